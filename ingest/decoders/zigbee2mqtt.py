"""Zigbee2MQTT device state and availability: {base}/{friendly name} and {base}/{friendly name}/availability.

Device id: the friendly name, which may contain '/' (kitchen/floor_sensor). State messages are JSON
objects; mapped keys: temperature (degC), humidity (relative_humidity, %), battery (%), voltage (the
battery in mV, stored as battery_voltage in V), pressure (hPa), co2 (ppm), illuminance_lux (lx). Other
keys (linkquality, action, state, ...) are ignored and nulls store nothing, neither is an error. Time:
`last_seen` when Zigbee2MQTT is configured to add it (ISO 8601 or epoch milliseconds), else the time
ingest received the message. Availability (retained) is `online`/`offline`, or {"state": "online"}
once the legacy payload is turned off. Bridge topics ({base}/bridge/...) and commands (/set, /get) are
ignored. A message naming nothing Placewatch measures has no device id, so lights and switches on a
shared bridge are not reported as unknown devices.
"""

from __future__ import annotations

from datetime import datetime

from core.model import Decoded, DecodeError, Reading
from core.timeparse import parse_any

from .base import TIME_ERRORS, as_number, json_kind, load_json, reading
from .native import decode_status

KEYS: dict[str, tuple[str, str]] = {
    "temperature": ("temperature", "C"),
    "humidity": ("relative_humidity", "%"),
    "battery": ("battery", "%"),
    "voltage": ("battery_voltage", "mV"),
    "pressure": ("pressure", "hPa"),
    "co2": ("co2", "ppm"),
    "illuminance_lux": ("illuminance", "lx"),
}


class Zigbee2MQTTDecoder:
    """Zigbee sensors through Zigbee2MQTT under a configurable base topic."""

    name = "zigbee2mqtt"

    def __init__(self, base_topic: str = "zigbee2mqtt") -> None:
        self.base = base_topic.strip().rstrip("/")
        if not self.base or "+" in self.base or "#" in self.base:
            raise ValueError(f"zigbee2mqtt base topic {base_topic!r} must be a plain topic such as 'zigbee2mqtt'")
        self._head = self.base + "/"

    def subscriptions(self) -> list[str]:
        """Everything under the base topic: friendly names may contain '/'."""
        return [self._head + "#"]

    def matches(self, topic: str) -> bool:
        """True for topics under the base topic."""
        return topic.startswith(self._head)

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> Decoded:
        """Decode a device state or availability message; bridge and command topics yield nothing."""
        rest = topic[len(self._head) :]
        segments = rest.split("/")
        if segments[0] == "bridge" or not rest:
            return Decoded(device_id=None, format=self.name, meta={"ignored": "bridge topic"})
        if "set" in segments[-2:] or "get" in segments[-2:]:
            return Decoded(device_id=None, format=self.name, meta={"ignored": "command topic"})
        if segments[-1] == "availability":
            name = rest[: -len("/availability")]
            if not name:
                raise DecodeError(f"topic {topic!r} names no device before /availability")
            return decode_status(name, payload, received_at, fmt=self.name)
        doc = load_json(payload)
        if not isinstance(doc, dict):
            raise DecodeError(f"device message must be a JSON object, not {json_kind(doc)}")
        rejections: list[str] = []
        ts = received_at
        meta: dict[str, str] = {}
        last_seen = doc.get("last_seen")
        if last_seen is not None:
            try:
                ts = parse_any(last_seen)
            except TIME_ERRORS as exc:
                meta["time"] = f"last_seen unreadable ({str(exc)[:120]}); used the time received"
        out: list[Reading | None] = []
        known = False
        for key, (metric, unit) in KEYS.items():
            if key in doc:
                known = True
                out.append(reading(rest, metric, ts, as_number(doc[key]), unit, rejections))
        if not known:
            meta["ignored"] = "nothing Placewatch measures"
        return Decoded(
            device_id=rest if known else None,
            readings=tuple(r for r in out if r is not None),
            rejections=tuple(rejections),
            format=self.name,
            meta=meta,
        )
