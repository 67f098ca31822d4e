"""SenML JSON packs (RFC 8428) on configurable topics (default senml/#).

A pack is an array of records. Base fields (bn, bt, bu, bv) carry forward to later records until
changed; a record's name is bn + n, its time bt + t, its value bv + v. Resolved times below 2**28
are seconds relative to the time ingest received the pack; others are epoch seconds. A pack naming
several devices is allowed: each reading carries its own device id and Decoded.device_id is the first.

Device id: the base name without one trailing ':' or '/' (bn "urn:dev:ow:10e2073a01080063:" names
device "urn:dev:ow:10e2073a01080063", its measurement being n). With no base name: for a dev URN the
first four ':'-parts ("urn:dev:ow:10e2073a01080063:temp" -> that device, measurement "temp"), else the
name up to its last ':' or '/', else (a bare name like "temp") the topic level under the filter's '#'.

Metric: from the measurement's last ':'/'/' part and the unit. A metric name itself, or temp/temperature,
humidity/hum/rh, battery/bat/batt, voltage/vbat/batv, pressure, co2, dewpoint, illuminance/lux; the unit
converts (Cel, K, %RH, "/" as a 0-1 ratio for humidity, %EL, V, Pa, lx, ppm; battery with V becomes
battery_voltage). With no measurement name the unit alone decides (Cel temperature, %RH humidity, %EL
battery, V battery_voltage, Pa pressure, lx, ppm); under an unknown name only %RH and %EL do, since a
"cpu" in Cel is not a room temperature. Other records (lat/lon, current, vb, vd) are ignored.
String values (vs) are used for categorical metrics (surface_state). A field ending in '_' must be
understood (RFC 8428 section 4.4), so a pack using one is refused whole.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from core.metrics import METRICS
from core.model import Decoded, DecodeError, Reading
from core.timeparse import from_epoch

from .base import FilteredTopics, json_kind, load_json, reading
from .native import MAX_ENTRIES

DEFAULT_TOPICS = ("senml/#",)
RELATIVE_LIMIT = 2**28  # RFC 8428 section 4.5.3
NAMES = {
    "temp": "temperature",
    "temperature": "temperature",
    "humidity": "relative_humidity",
    "hum": "relative_humidity",
    "rh": "relative_humidity",
    "battery": "battery",
    "bat": "battery",
    "batt": "battery",
    "voltage": "battery_voltage",
    "vbat": "battery_voltage",
    "batv": "battery_voltage",
    "dewpoint": "dew_point",
    "lux": "illuminance",
}
UNITS = {
    "cel": "temperature",
    "k": "temperature",
    "%rh": "relative_humidity",
    "%el": "battery",
    "v": "battery_voltage",
    "pa": "pressure",
    "lx": "illuminance",
    "ppm": "co2",
}
SELF_DESCRIBING_UNITS = frozenset({"%rh", "%el"})


class SenMLDecoder(FilteredTopics):
    """SenML JSON packs from any device that speaks RFC 8428."""

    name = "senml"

    def __init__(self, topics: Sequence[str] = DEFAULT_TOPICS) -> None:
        self.set_topics(topics, "senml/#")

    def _topic_device(self, topic: str) -> str | None:
        for f in self.topics:
            head = f[:-1]
            if f.endswith("/#") and "+" not in head and topic.startswith(head) and len(topic) > len(head):
                return topic[len(head) :]
        return None

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> Decoded:
        """Resolve the pack's records and keep those that map to a metric."""
        doc = load_json(payload)
        if not isinstance(doc, list):
            raise DecodeError(f"a SenML pack must be a JSON array of records, not {json_kind(doc)}")
        if not doc:
            raise DecodeError("SenML pack is empty")
        if len(doc) > MAX_ENTRIES:
            raise DecodeError(f"SenML pack has {len(doc)} records; at most {MAX_ENTRIES} per message")
        for i, rec in enumerate(doc):
            if isinstance(rec, dict):
                odd = next((k for k in rec if k.endswith("_")), None)
                if odd is not None:
                    raise DecodeError(
                        f"record {i} uses field {odd[:40]!r}, which must be understood (RFC 8428 section 4.4) "
                        "and Placewatch does not"
                    )
        rejections: list[str] = []
        out: list[Reading] = []
        seen: set[tuple[str, str, datetime]] = set()
        first_device: str | None = None
        names: list[str] = []
        topic_device = self._topic_device(topic)
        bn, bt, bu, bv = "", 0.0, None, 0.0
        for i, rec in enumerate(doc):
            where = f"record {i}: "
            if not isinstance(rec, dict):
                rejections.append(f"{where}must be an object, not {json_kind(rec)}")
                continue
            try:
                bn = _text(rec, "bn", bn)
                bt = _number(rec, "bt", bt)
                bu = _text(rec, "bu", bu)
                bv = _number(rec, "bv", bv)
                n = _text(rec, "n", "")
                u = _text(rec, "u", bu)
                t = _number(rec, "t", 0.0)
            except ValueError as exc:
                rejections.append(f"{where}{exc}")
                continue
            if not any(k in rec for k in ("v", "vs", "vb", "vd", "s")):
                continue  # a record that only sets base fields
            device, measurement = _split(bn, n, topic_device)
            names.append(bn + n)
            if device is None:
                rejections.append(f"{where}name {(bn + n)[:60]!r} names no device")
                continue
            first_device = first_device or device
            metric = _metric(measurement, u)
            if metric is None:
                continue
            if METRICS[metric].categories is not None:
                raw: object = rec.get("vs")
                if raw is None:
                    rejections.append(f"{where}{metric} needs a string value (vs)")
                    continue
            elif "v" in rec:
                raw = rec["v"]
                if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                    rejections.append(f"{where}v must be a number, not {json_kind(raw)}")
                    continue
                raw = raw + bv
            else:
                continue  # vs/vb/vd for a numeric metric: nothing to store
            try:
                ts = _time(bt + t, received_at)
            except ValueError as exc:
                rejections.append(f"{where}{exc}")
                continue
            before = len(rejections)
            r = reading(device, metric, ts, raw, u, rejections)
            for j in range(before, len(rejections)):
                rejections[j] = f"{where}{rejections[j]}"
            if r is not None and (r.device_id, r.metric, r.ts) not in seen:
                seen.add((r.device_id, r.metric, r.ts))
                out.append(r)
        if not out and not rejections:
            listed = ", ".join(dict.fromkeys(names))[:200] or "none"
            raise DecodeError(f"SenML pack has no record Placewatch can use (names: {listed})")
        return Decoded(device_id=first_device, readings=tuple(out), rejections=tuple(rejections), format=self.name)


def _text(rec: dict[str, Any], key: str, default: str | None) -> Any:
    if key not in rec:
        return default
    value = rec[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, not {json_kind(value)}")
    return value


def _number(rec: dict[str, Any], key: str, default: float) -> float:
    if key not in rec:
        return default
    value = rec[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} must be a number, not {json_kind(value)}")
    return float(value)


def _split(bn: str, n: str, topic_device: str | None) -> tuple[str | None, str]:
    """(device id, measurement name) for a record."""
    if bn:
        device = bn[:-1] if bn.endswith((":", "/")) else bn
        if device:
            return device, n
    name = bn + n
    if name.startswith("urn:dev:"):
        parts = name.split(":")
        if len(parts) >= 4 and parts[3]:
            return ":".join(parts[:4]), ":".join(parts[4:])
    cut = max(name.rfind(":"), name.rfind("/"))
    if cut > 0:
        return name[:cut], name[cut + 1 :]
    return topic_device, name


def _metric(measurement: str, unit: str | None) -> str | None:
    """The metric a measurement name and unit stand for, or None when the record is not ours."""
    last = measurement.replace("/", ":").rsplit(":", 1)[-1].strip().lower()
    u = unit.strip().lower() if unit else None
    if last:
        if last in METRICS:
            return last
        if last in NAMES:
            return NAMES[last]
        return UNITS[u] if u in SELF_DESCRIBING_UNITS else None
    return UNITS.get(u) if u else None


def _time(seconds: float, received_at: datetime) -> datetime:
    if not math.isfinite(seconds):
        raise ValueError(f"time {seconds} is not a finite number")
    if seconds < RELATIVE_LIMIT:
        try:
            return received_at + timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError(f"relative time {seconds:g} s is out of range") from None
    return from_epoch(seconds, unit="s")
