"""Gritting decisions as OASIS CAP 1.2 alerts, and an Atom feed of them. Pure: rows in, XML out.

Each decision is one CAP alert, identified by its decision id. A decision that updates an earlier one is
msgType Update with a reference to the earlier alert; a decision the duty officer cancelled is msgType
Cancel referring to its own alert; a route back to "no action" after a treatment decision is an Update
with responseType AllClear. Times are UTC written with an explicit "+00:00" (CAP forbids "Z").
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.gritting.vocab import ACTION_INSTRUCTIONS, ACTIVE, TREATING, DecisionStatus, GrittingAction

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
LONDON = ZoneInfo("Europe/London")
RECENT = timedelta(hours=24)  # cancellations and all-clears stay in the feed this long
MIN_RADIUS_KM = 1.0

# How CAP says each action: its event, response type and severity (the words people read are core's).
_EVENTS: dict[GrittingAction, str] = {
    GrittingAction.NONE: "Road ice risk: no treatment needed",
    GrittingAction.MONITOR: "Road ice risk: monitoring",
    GrittingAction.PRECAUTIONARY_SALT: "Road ice risk: precautionary gritting",
    GrittingAction.SALT: "Ice or frost on the road: gritting",
    GrittingAction.PLOUGH_AND_SALT: "Snow: ploughing and gritting",
    GrittingAction.ESCALATE: "Severe cold: salt alone may not work",
}
_RESPONSE: dict[GrittingAction, str] = {
    GrittingAction.NONE: "AllClear",
    GrittingAction.MONITOR: "Monitor",
    GrittingAction.PRECAUTIONARY_SALT: "Prepare",
    GrittingAction.SALT: "Execute",
    GrittingAction.PLOUGH_AND_SALT: "Execute",
    GrittingAction.ESCALATE: "Assess",
}
_SEVERITY: dict[GrittingAction, str] = {
    GrittingAction.NONE: "Minor",
    GrittingAction.MONITOR: "Minor",
    GrittingAction.PRECAUTIONARY_SALT: "Moderate",
    GrittingAction.SALT: "Moderate",
    GrittingAction.PLOUGH_AND_SALT: "Severe",
    GrittingAction.ESCALATE: "Severe",
}

ET.register_namespace("cap", CAP_NS)


def cap_time(ts: datetime | str) -> str:
    """A CAP dateTime: seconds precision, explicit offset, never 'Z'."""
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    if ts.tzinfo is None:
        raise ValueError(f"CAP times must be aware, got {ts.isoformat()}")
    return ts.astimezone(UTC).replace(microsecond=0).isoformat()


def _dt(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _hm(value: datetime | str | None) -> str:
    dt = _dt(value)
    return dt.astimezone(LONDON).strftime("%H:%M") if dt is not None else "?"


def identifier(decision_id: int, *, cancel: bool = False) -> str:
    """The CAP identifier of a decision's alert (or of the message cancelling it)."""
    return f"placewatch-gritting-{decision_id}{'-cancel' if cancel else ''}"


def urgency(d: Mapping[str, Any], now: datetime) -> str:
    """Immediate when crews must go now, Expected within the hour, Future later, Past for all-clears."""
    action = d["action"]
    if action == GrittingAction.NONE:
        return "Past"
    if action == GrittingAction.MONITOR:
        return "Future"
    call_out = _dt(d.get("call_out_by"))
    if d.get("treat_now") or call_out is None or call_out <= now:
        return "Immediate"
    return "Expected" if call_out - now <= timedelta(hours=1) else "Future"


def certainty(d: Mapping[str, Any]) -> str:
    """Observed for conditions on the road now, else from the decision's confidence."""
    if d["action"] == GrittingAction.NONE:
        return "Observed" if d.get("previous_action") in TREATING else "Likely"
    if d.get("treat_now"):
        return "Observed"
    conf = float(d.get("confidence") or 0.0)
    if conf >= 0.6:
        return "Likely"
    if conf >= 0.3:
        return "Possible"
    return "Unlikely" if conf > 0 else "Unknown"


def expires(d: Mapping[str, Any]) -> datetime:
    """When the alert stops applying: after the treatment window and the coldest time, at least 12 h after issue."""
    issued = _dt(d["issued_at"])
    assert issued is not None
    times = [_dt(d.get(k)) for k in ("complete_by", "trigger_at", "min_rst_at")]
    return max([issued + timedelta(hours=12), *(t + timedelta(hours=2) for t in times if t is not None)])


def msg_type(d: Mapping[str, Any]) -> str:
    """Alert, Update (it replaces an earlier decision) or Cancel (the duty officer cancelled it)."""
    if d["status"] == DecisionStatus.CANCELLED:
        return "Cancel"
    return "Update" if d.get("previous_id") is not None else "Alert"


def in_feed(d: Mapping[str, Any], now: datetime) -> bool:
    """True for decisions people should see: active and unexpired, or recently cancelled or cleared."""
    status, action = d["status"], d["action"]
    if status == DecisionStatus.CANCELLED:
        at = _dt(d.get("status_at"))
        return at is not None and now - at <= RECENT
    if status not in ACTIVE or expires(d) < now:
        return False
    if action == GrittingAction.NONE:  # an all-clear only after a treatment decision
        issued = _dt(d["issued_at"])
        return d.get("previous_action") in TREATING and issued is not None and now - issued <= RECENT
    return True


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def _headline(d: Mapping[str, Any]) -> str:
    name = d.get("route_name") or d["route_id"]
    words = ACTION_INSTRUCTIONS[GrittingAction(d["action"])]
    rate = d.get("spread_rate_g_m2")
    if rate is not None:
        passes = int(d.get("passes") or 1)
        words += f", {passes} x {rate:g} g/m²" if passes > 1 else f", {rate:g} g/m²"
    return f"{name}: {words}"[:160]


def _instruction(d: Mapping[str, Any]) -> str | None:
    if d["action"] not in TREATING:
        return None
    if d.get("treat_now"):
        return f"Call out now; start by {_hm(d.get('start_by'))}, complete by {_hm(d.get('complete_by'))} (UK time)."
    if d.get("call_out_by") is None:
        return "The duty officer decides the treatment."
    return (
        f"Call out by {_hm(d.get('call_out_by'))}, start by {_hm(d.get('start_by'))}, "
        f"complete by {_hm(d.get('complete_by'))} (UK time)."
    )


def area(parent: ET.Element, geometry: Mapping[str, Any] | None, desc: str) -> None:
    """A CAP area: the route's name, and a polygon (for polygon geometry) or a circle around its line."""
    el = _sub(parent, "area")
    _sub(el, "areaDesc", desc)
    if not geometry:
        return
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon" and coords:
        ring = coords[0]
        if ring and ring[0] != ring[-1]:
            ring = [*ring, ring[0]]
        if len(ring) >= 4:
            _sub(el, "polygon", " ".join(f"{lat:.5f},{lon:.5f}" for lon, lat, *_ in ring))
            return
    points = list(_positions(kind, coords))
    if not points:
        return
    lats = [p[1] for p in points]
    lons = [p[0] for p in points]
    clat, clon = (min(lats) + max(lats)) / 2.0, (min(lons) + max(lons)) / 2.0
    radius = max(_km(clat, clon, lat, lon) for lon, lat in points) + 0.5
    _sub(el, "circle", f"{clat:.5f},{clon:.5f} {max(radius, MIN_RADIUS_KM):.2f}")


def _positions(kind: Any, coords: Any) -> Iterable[tuple[float, float]]:
    if kind == "Point":
        yield float(coords[0]), float(coords[1])
    elif kind in ("LineString", "MultiPoint"):
        for c in coords:
            yield float(c[0]), float(c[1])
    elif kind in ("MultiLineString", "Polygon"):
        for line in coords:
            for c in line:
                yield float(c[0]), float(c[1])
    elif kind == "MultiPolygon":
        for poly in coords:
            for ring in poly:
                for c in ring:
                    yield float(c[0]), float(c[1])


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(min(1.0, a)))


def alert(d: Mapping[str, Any], *, sender: str, now: datetime) -> ET.Element:
    """One decision as a CAP 1.2 <alert> element.

    `d` is a decision as the API shows it (times as datetimes or RFC 3339 strings), with `route_name`,
    and optionally `route_geometry` (GeoJSON), `previous_action` and `previous_issued_at`.
    """
    kind = msg_type(d)
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", identifier(int(d["id"]), cancel=kind == "Cancel"))
    _sub(root, "sender", sender)
    sent = _dt(d.get("status_at")) if kind == "Cancel" else _dt(d["issued_at"])
    _sub(root, "sent", cap_time(sent or now))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", kind)
    _sub(root, "source", "Placewatch gritting evaluator")
    _sub(root, "scope", "Public")
    if kind == "Cancel":
        _sub(root, "note", f"Decision {d['id']} was cancelled by {d.get('status_by') or 'the duty officer'}.")
        _sub(root, "references", f"{sender},{identifier(int(d['id']))},{cap_time(d['issued_at'])}")
    elif kind == "Update" and d.get("previous_issued_at") is not None:
        _sub(root, "references", f"{sender},{identifier(int(d['previous_id']))},{cap_time(d['previous_issued_at'])}")
    _sub(root, "incidents", f"placewatch-gritting-route-{d['route_id']}".replace(" ", "_").replace(",", "_"))

    info = _sub(root, "info")
    _sub(info, "language", "en-GB")
    _sub(info, "category", "Transport")
    _sub(info, "event", _EVENTS[GrittingAction(d["action"])])
    _sub(info, "responseType", "None" if kind == "Cancel" else _RESPONSE[GrittingAction(d["action"])])
    _sub(info, "urgency", "Past" if kind == "Cancel" else urgency(d, now))
    _sub(info, "severity", "Minor" if kind == "Cancel" else _SEVERITY[GrittingAction(d["action"])])
    _sub(info, "certainty", "Observed" if kind == "Cancel" else certainty(d))
    _sub(info, "audience", "Highway users and winter service crews")
    _sub(info, "effective", cap_time(d["issued_at"]))
    onset = _dt(d.get("start_by")) if d["action"] in TREATING else None
    if onset is not None:
        _sub(info, "onset", cap_time(onset))
    _sub(info, "expires", cap_time(expires(d)))
    _sub(info, "senderName", "Placewatch winter service")
    _sub(info, "headline", _headline(d))
    reasons = [str(r) for r in d.get("reasons") or []]
    _sub(info, "description", "\n".join([str(d.get("message") or _headline(d)), *reasons]))
    instruction = _instruction(d)
    if instruction and kind != "Cancel":
        _sub(info, "instruction", instruction)
    for name, value in (
        ("action", d["action"]),
        ("spread_rate_g_m2", d.get("spread_rate_g_m2")),
        ("passes", d.get("passes")),
        ("spread_type", d.get("spread_type")),
        ("status", d["status"]),
        ("call_out_by", d.get("call_out_by") and cap_time(d["call_out_by"])),
        ("min_rst", d.get("min_rst")),
        ("confidence", d.get("confidence")),
    ):
        if value is None:
            continue
        p = _sub(info, "parameter")
        _sub(p, "valueName", f"placewatch:{name}")
        _sub(p, "value", f"{value:g}" if isinstance(value, float) else str(value))
    area(info, d.get("route_geometry"), str(d.get("route_name") or d["route_id"]))
    return root


def alert_xml(d: Mapping[str, Any], *, sender: str, now: datetime) -> bytes:
    """One CAP alert document (application/cap+xml)."""
    return _document(alert(d, sender=sender, now=now), CAP_NS)


def feed_xml(decisions: Iterable[Mapping[str, Any]], *, sender: str, now: datetime, feed_id: str) -> bytes:
    """An Atom feed with one entry per decision in the feed, each carrying its CAP alert."""
    # Atom elements are written unqualified under a literal default xmlns (ElementTree cannot give a
    # default namespace to a tree with unqualified attributes such as content/@type); CAP keeps "cap:".
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    ET.SubElement(feed, "id").text = feed_id
    ET.SubElement(feed, "title").text = "Placewatch gritting decisions"
    ET.SubElement(feed, "updated").text = cap_time(now)
    ET.SubElement(ET.SubElement(feed, "author"), "name").text = sender
    for d in decisions:
        if not in_feed(d, now):
            continue
        alert_el = alert(d, sender=sender, now=now)
        entry = ET.SubElement(feed, "entry")
        ET.SubElement(entry, "id").text = f"{sender},{_text(alert_el, 'identifier')}"
        ET.SubElement(entry, "title").text = _text(alert_el, "info/headline")
        ET.SubElement(entry, "updated").text = cap_time(_dt(d.get("status_at")) or now)
        ET.SubElement(entry, "content", {"type": "application/cap+xml"}).append(alert_el)
    return _document(feed, None)


def _text(cap: ET.Element, path: str) -> str:
    found = cap.find("/".join(f"{{{CAP_NS}}}{p}" for p in path.split("/")))
    return (found.text or "") if found is not None else ""


def _document(root: ET.Element, default_namespace: str | None) -> bytes:
    ET.indent(root)
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=default_namespace)
    return out
