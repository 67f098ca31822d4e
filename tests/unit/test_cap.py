"""Gritting decisions as CAP 1.2 alerts: element order, times, message types, the mapped codes, the area."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts import cap

NS = "{urn:oasis:names:tc:emergency:cap:1.2}"
NOW = datetime(2026, 1, 15, 16, 0, tzinfo=UTC)
SENDER = "placewatch@council.example"
# The sequences of the OASIS CAP 1.2 schema (CAP-v1.2.xsd): elements must appear in this order.
ALERT_ORDER = [
    "identifier", "sender", "sent", "status", "msgType", "source", "scope", "restriction", "addresses", "code",
    "note", "references", "incidents", "info",
]  # fmt: skip
INFO_ORDER = [
    "language", "category", "event", "responseType", "urgency", "severity", "certainty", "audience", "eventCode",
    "effective", "onset", "expires", "senderName", "headline", "description", "instruction", "web", "contact",
    "parameter", "resource", "area",
]  # fmt: skip
CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")
LINE = {"type": "LineString", "coordinates": [[-1.95, 52.46], [-1.90, 52.48], [-1.85, 52.50]]}


def decision(**over: Any) -> dict[str, Any]:
    """A precautionary salt decision as the API shows it (times as RFC 3339 strings)."""
    d: dict[str, Any] = {
        "id": 42,
        "route_id": "P1",
        "route_name": "P1 A456 Hagley Road",
        "action": "precautionary_salt",
        "rule": "wet_road_below_trigger",
        "spread_rate_g_m2": 8.0,
        "passes": 1,
        "spread_type": "dry",
        "call_out_by": "2026-01-15T19:00:00Z",
        "start_by": "2026-01-15T20:00:00Z",
        "complete_by": "2026-01-15T23:00:00Z",
        "trigger_at": "2026-01-15T23:30:00Z",
        "treat_now": False,
        "late": False,
        "min_rst": -1.5,
        "min_rst_at": "2026-01-16T04:00:00Z",
        "reasons": ["Wet road with RST expected to reach -1.5 C: ice will form without salt."],
        "message": "Precautionary salt, route P1, 8 g/m2 dry, start 20:00, complete by 23:00",
        "confidence": 0.8,
        "issued_at": "2026-01-15T15:59:30.123456Z",
        "status": "issued",
        "status_at": "2026-01-15T15:59:30.123456Z",
        "status_by": "evaluator",
        "previous_id": None,
        "route_geometry": LINE,
    }
    d.update(over)
    return d


def parse(d: dict[str, Any]) -> ET.Element:
    return ET.fromstring(cap.alert_xml(d, sender=SENDER, now=NOW))


def text(el: ET.Element, path: str) -> str | None:
    return el.findtext("/".join(NS + p for p in path.split("/")))


def local(el: ET.Element) -> str:
    return el.tag.split("}")[1]


def assert_order(children: list[ET.Element], order: list[str]) -> None:
    names = [local(c) for c in children]
    assert all(n in order for n in names), names
    positions = [order.index(n) for n in names]
    assert positions == sorted(positions), names


def test_alert_has_the_cap_1_2_elements_in_schema_order_with_cap_times() -> None:
    root = parse(decision())
    assert root.tag == NS + "alert"
    assert_order(list(root), ALERT_ORDER)
    info = root.find(NS + "info")
    assert info is not None
    assert_order(list(info), INFO_ORDER)
    assert text(root, "identifier") == "placewatch-gritting-42"
    assert text(root, "sender") == SENDER
    assert text(root, "status") == "Actual" and text(root, "scope") == "Public"
    assert text(root, "msgType") == "Alert" and root.find(NS + "references") is None
    for path in ("sent", "info/effective", "info/onset", "info/expires"):
        value = text(root, path)
        assert value is not None and CAP_TIME.match(value), (path, value)
    assert text(root, "sent") == "2026-01-15T15:59:30+00:00"  # seconds precision, never "Z"
    assert text(root, "info/category") == "Transport"
    assert text(root, "info/headline") == "P1 A456 Hagley Road: Precautionary salt, 8 g/m²"
    assert "ice will form" in (text(root, "info/description") or "")
    assert text(root, "info/instruction") == "Call out by 19:00, start by 20:00, complete by 23:00 (UK time)."


def test_precautionary_salt_hours_ahead_is_future_moderate_and_likely() -> None:
    info = parse(decision()).find(NS + "info")
    assert info is not None
    assert [text(info, k) for k in ("urgency", "severity", "certainty", "responseType")] == [
        "Future",
        "Moderate",
        "Likely",
        "Prepare",
    ]


def test_call_out_within_the_hour_is_expected_and_low_confidence_only_possible() -> None:
    d = decision(call_out_by=(NOW + timedelta(minutes=40)).isoformat(), confidence=0.4)
    info = parse(d).find(NS + "info")
    assert info is not None
    assert text(info, "urgency") == "Expected" and text(info, "certainty") == "Possible"


def test_ice_on_the_road_is_immediate_and_observed() -> None:
    d = decision(action="salt", rule="ice_on_road", spread_rate_g_m2=20.0, treat_now=True, call_out_by=NOW.isoformat())
    info = parse(d).find(NS + "info")
    assert info is not None
    assert [text(info, k) for k in ("urgency", "certainty", "responseType")] == ["Immediate", "Observed", "Execute"]
    assert (text(info, "instruction") or "").startswith("Call out now")


def test_escalation_is_severe_and_prints_no_rate() -> None:
    d = decision(action="escalate", spread_rate_g_m2=None, rule="escalate_salt_marginal")
    root = parse(d)
    assert text(root, "info/severity") == "Severe" and text(root, "info/responseType") == "Assess"
    names = [text(p, "valueName") for p in root.iter(NS + "parameter")]
    assert "placewatch:spread_rate_g_m2" not in names and "placewatch:action" in names


def test_an_update_references_the_decision_it_replaces() -> None:
    d = decision(previous_id=41, previous_action="monitor", previous_issued_at="2026-01-15T12:00:00Z")
    root = parse(d)
    assert text(root, "msgType") == "Update"
    assert text(root, "references") == f"{SENDER},placewatch-gritting-41,2026-01-15T12:00:00+00:00"


def test_a_cancelled_decision_is_a_cancel_referring_to_its_own_alert() -> None:
    d = decision(status="cancelled", status_at="2026-01-15T17:00:00Z", status_by="duty-officer")
    root = parse(d)
    assert text(root, "msgType") == "Cancel"
    assert text(root, "identifier") == "placewatch-gritting-42-cancel"
    assert text(root, "references") == f"{SENDER},placewatch-gritting-42,2026-01-15T15:59:30+00:00"
    assert text(root, "sent") == "2026-01-15T17:00:00+00:00"
    assert "duty-officer" in (text(root, "note") or "")
    assert root.find(f"{NS}info/{NS}instruction") is None


def test_route_line_becomes_a_circle_around_it() -> None:
    circle = text(parse(decision()), "info/area/circle")
    assert circle is not None
    centre, radius = circle.split(" ")
    lat, lon = (float(x) for x in centre.split(","))
    assert lat == pytest.approx(52.48) and lon == pytest.approx(-1.90)
    assert 3.0 < float(radius) < 6.0  # about 3.3 km to the ends, plus a margin
    assert text(parse(decision()), "info/area/areaDesc") == "P1 A456 Hagley Road"


def test_polygon_area_is_a_closed_lat_lon_ring_and_no_geometry_only_names_the_area() -> None:
    poly = {"type": "Polygon", "coordinates": [[[-1.9, 52.4], [-1.8, 52.4], [-1.8, 52.5], [-1.9, 52.5]]]}
    ring = (text(parse(decision(route_geometry=poly)), "info/area/polygon") or "").split(" ")
    assert ring[0] == ring[-1] == "52.40000,-1.90000" and len(ring) == 5
    bare = parse(decision(route_geometry=None))
    assert bare.find(f"{NS}info/{NS}area/{NS}circle") is None
    assert text(bare, "info/area/areaDesc") == "P1 A456 Hagley Road"


def test_feed_holds_active_decisions_recent_cancellations_and_all_clears_only() -> None:
    rows = [
        decision(id=1),
        decision(id=2, status="superseded"),
        decision(id=3, status="completed"),
        decision(id=4, action="none", spread_rate_g_m2=None, previous_id=1, previous_action="precautionary_salt"),
        decision(id=5, action="none", spread_rate_g_m2=None),  # nothing before it: nothing to say
        decision(id=6, status="cancelled", status_at=(NOW - timedelta(hours=1)).isoformat()),
        decision(id=7, status="cancelled", status_at=(NOW - timedelta(days=3)).isoformat()),
        decision(
            id=8, issued_at="2026-01-13T10:00:00Z", complete_by="2026-01-13T20:00:00Z", trigger_at=None, min_rst_at=None
        ),  # expired: its window ended two days ago
    ]
    feed = ET.fromstring(cap.feed_xml(rows, sender=SENDER, now=NOW, feed_id="feed-1"))
    assert feed.tag == "{http://www.w3.org/2005/Atom}feed"
    ids = [a.findtext(NS + "identifier") for a in feed.iter(NS + "alert")]
    assert ids == ["placewatch-gritting-1", "placewatch-gritting-4", "placewatch-gritting-6-cancel"]
    clear = next(a for a in feed.iter(NS + "alert") if a.findtext(NS + "identifier") == "placewatch-gritting-4")
    assert text(clear, "info/responseType") == "AllClear" and text(clear, "info/urgency") == "Past"
    assert text(clear, "msgType") == "Update"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        cap.cap_time(datetime(2026, 1, 15, 16, 0))
