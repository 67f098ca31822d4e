"""The native format of CONTRACT.md: placewatch/v1/devices/{device_id}/readings and /status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from core.metrics import METRICS
from core.model import Decoded, DecodeError, Reading, StatusChange
from core.timeparse import parse_any, rfc3339_us

from .base import decoded, json_kind, load_json, reading

MAX_ENTRIES = 10_000
_NUMERIC = {m.name: (m.low, m.high) for m in METRICS.values() if m.categories is None}
# Integer times the fast lane takes (parse_any's rule: from 1e11 milliseconds, else seconds), years 1973 to 3000.
_MS_LOW, _MS_HIGH = 100_000_000_000, 32_503_680_000_000
_S_LOW, _S_HIGH = 100_000_000, 100_000_000_000
# Readings topics remembered (NativeDecoder.readings_device): one per device (forgotten all at once past the count), of
# a length device ids have, so that a flood of long or one-off topics holds at most about 50 MB.
_TOPICS_MAX, _TOPIC_CACHED_LEN = 100_000, 160


class NativeDecoder:
    """Readings and status in Placewatch's own format, under a configurable topic prefix."""

    name = "native"

    def __init__(self, prefix: str = "placewatch/v1") -> None:
        self.prefix = prefix.rstrip("/")
        self._devices = self.prefix + "/devices/"
        self._readings: dict[str, str | None] = {}  # topic -> readings_device(topic)

    def subscriptions(self) -> list[str]:
        """Everything under the devices tree: ids may contain '/', so '+' is not enough."""
        return [self._devices + "#"]

    def matches(self, topic: str) -> bool:
        """True for topics under {prefix}/devices/."""
        return topic.startswith(self._devices)

    def device_and_kind(self, topic: str) -> tuple[str, str]:
        """Split a native topic into (device id, 'readings' | 'status')."""
        rest = topic[len(self._devices) :]
        device_id, sep, kind = rest.rpartition("/")
        if not sep or not device_id:
            raise DecodeError(
                f"topic {topic!r} is not {self._devices}{{device_id}}/readings or {self._devices}{{device_id}}/status"
            )
        if kind not in ("readings", "status"):
            raise DecodeError(f"topic {topic!r} ends in {kind!r}; expected 'readings' or 'status'")
        return device_id, kind

    def readings_device(self, topic: str) -> str | None:
        """The device id of a readings topic ({prefix}/devices/{id}/readings), else None; remembered per topic, as
        every message of a device comes on its one topic."""
        cache = self._readings
        device = cache.get(topic, "")  # "": not remembered (a device id is never empty)
        if device != "":
            return device
        device = None
        if topic.startswith(self._devices) and topic.endswith("/readings"):
            device = topic[len(self._devices) : -9] or None
        if len(topic) <= _TOPIC_CACHED_LEN:
            if len(cache) >= _TOPICS_MAX:
                cache.clear()
            cache[topic] = device
        return device

    def fast(self, payload: bytes) -> list[tuple[str, int, float]] | None:
        """The readings of a plain message as (metric, epoch microseconds, value), or None to use decode().

        Plain: an object (or array of up to MAX_ENTRIES objects) with exactly `ts`, as integer epoch
        milliseconds or seconds or as RFC 3339 in its common form (core.timeparse.rfc3339_us), and `values`
        of numeric metrics in range, no units. Whatever else a
        message holds, even if valid, goes through decode(), which gives the reasons; for a plain
        message both give the same readings.
        """
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        if type(doc) is dict:
            entries = [doc]
        elif type(doc) is list and 0 < len(doc) <= MAX_ENTRIES:
            entries = doc
        else:
            return None
        out: list[tuple[str, int, float]] = []
        numeric = _NUMERIC
        for e in entries:
            if type(e) is not dict or len(e) != 2:
                return None
            ts = e.get("ts")
            values = e.get("values")
            if type(values) is not dict or not values:
                return None
            if type(ts) is str:
                parsed = rfc3339_us(ts)
                if parsed is None:
                    return None
                us = parsed
            elif type(ts) is not int:
                return None
            elif _MS_LOW <= ts < _MS_HIGH:
                us = ts * 1000
            elif _S_LOW <= ts < _S_HIGH:
                us = ts * 1_000_000
            else:
                return None
            for metric, raw in values.items():
                bounds = numeric.get(metric)
                if bounds is None or type(raw) not in (int, float) or not bounds[0] <= raw <= bounds[1]:
                    return None
                out.append((metric, us, float(raw)))
        return out

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> Decoded:
        """Decode a readings message (object or array) or a status message."""
        device_id, kind = self.device_and_kind(topic)
        if kind == "status":
            return decode_status(device_id, payload, received_at, fmt=self.name)
        doc = load_json(payload, check_depth=False)  # values are checked as scalars; nothing recurses
        entries: list[Any]
        if isinstance(doc, dict):
            entries = [doc]
        elif isinstance(doc, list):
            if not doc:
                raise DecodeError("payload is an empty array: no readings")
            if len(doc) > MAX_ENTRIES:
                raise DecodeError(f"payload has {len(doc)} entries; at most {MAX_ENTRIES} per message")
            entries = doc
        else:
            raise DecodeError(f"payload must be a JSON object or an array of objects, not {json_kind(doc)}")
        rejections: list[str] = []
        out: list[Reading | None] = []
        many = len(entries) > 1
        for i, entry in enumerate(entries):
            where = f"entry {i}: " if many else ""
            if not isinstance(entry, dict):
                rejections.append(f"{where}must be an object, not {json_kind(entry)}")
                continue
            named = entry.get("device_id")
            if named is not None and not isinstance(named, str):
                # Never repr a JSON value into a reason: a deeply nested one overflows the recursion limit.
                raise DecodeError(f"payload's device_id must be a string, not {json_kind(named)}")
            if named is not None and named != device_id:
                raise DecodeError(f"payload names device {named[:100]!r} but the topic names {device_id!r}")
            values = entry.get("values")
            if not isinstance(values, dict):
                rejections.append(f"{where}'values' must be an object of metric: value")
                continue
            if not values:
                rejections.append(f"{where}'values' is empty")
                continue
            units = entry.get("units") or {}
            if not isinstance(units, dict):
                rejections.append(f"{where}'units' must be an object of metric: unit")
                continue
            ts_raw = entry.get("ts")
            if ts_raw is None:
                ts = received_at
            elif isinstance(ts_raw, (dict, list)):
                kind = json_kind(ts_raw)
                rejections.append(f"{where}time must be an RFC 3339 string or epoch milliseconds, not {kind}")
                continue
            else:
                try:
                    ts = parse_any(ts_raw)
                except ValueError as exc:
                    rejections.append(f"{where}{exc}")
                    continue
            before = len(rejections)
            for metric, raw in values.items():
                # Fast path for the common case: a plain number in range for a numeric metric, no unit given.
                bounds = _NUMERIC.get(metric)
                if bounds is not None and type(raw) in (int, float) and metric not in units:
                    if bounds[0] <= raw <= bounds[1]:
                        out.append(Reading(device_id, metric, ts, float(raw), None))
                        continue
                unit = units.get(metric)
                out.append(reading(device_id, metric, ts, raw, unit if isinstance(unit, str) else None, rejections))
            if where:
                for j in range(before, len(rejections)):
                    rejections[j] = where + rejections[j]
        return decoded(device_id, out, rejections, self.name)


_STATES = {"online": "online", "offline": "offline", "true": "online", "false": "offline"}


def decode_status(device_id: str, payload: bytes, received_at: datetime, *, fmt: str) -> Decoded:
    """online/offline as plain text, a JSON string, or {"state"|"status": ...}. Empty clears: no change."""
    text = payload.strip()
    if not text:
        return Decoded(device_id=device_id, format=fmt)
    word: object = None
    try:
        word = text.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("status payload is not UTF-8 text") from None
    if text[:1] in (b"{", b'"'):
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise DecodeError(f"status payload {text[:60]!r} is not valid JSON") from None
        word = doc.get("state", doc.get("status")) if isinstance(doc, dict) else doc
    state = _STATES.get(str(word).strip().lower()) if isinstance(word, (str, bool)) else None
    if state is None:
        got = repr(word[:60]) if isinstance(word, str) else json_kind(word)  # str() of deep JSON would recurse
        raise DecodeError(f"status must be 'online' or 'offline', got {got}")
    return Decoded(device_id=device_id, status=(StatusChange(device_id, state, received_at),), format=fmt)  # type: ignore[arg-type]
