"""Tasmota telemetry: {prefix}/{topic}/SENSOR readings and {prefix}/{topic}/LWT status.

Device id: the Tasmota topic (everything between the prefix and the last level). SENSOR is a JSON
object whose sensor keys vary (BME280, SHT3X, AM2301, DHT11, DS18B20, SI7021, DS18B20-1...): each is an
object that may carry Temperature, Humidity, DewPoint, Pressure, CarbonDioxide, Illuminance. One message
stores at most one value per metric: the first sensor in the message with a valid value for it (a
second temperature at the same instant would be a duplicate reading), and Decoded.meta says which
sensor gave which metric and which values were not used. The ESP32's own chip temperature
("ESP32": {"Temperature": ...}) is never used. TempUnit (C or F) and PressureUnit apply to all sensors.
Time: `Time`, device-local with no zone, read in the configured zone (default Europe/London); a
device whose clock is not set yet reports 1970 and gets the time received instead. A SENSOR message
with no such value (a plug's ENERGY, switches) yields nothing and no device id. LWT (retained) is
`Online`/`Offline`. STATE and other telemetry are ignored.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.model import Decoded, DecodeError, Reading
from core.timeparse import EARLIEST, parse_local

from .base import TIME_ERRORS, json_kind, load_json, reading
from .native import decode_status

# sensor field -> (metric, which unit key of the message applies, default unit)
FIELDS: dict[str, tuple[str, str | None, str]] = {
    "Temperature": ("temperature", "TempUnit", "C"),
    "Humidity": ("relative_humidity", None, "%"),
    "DewPoint": ("dew_point", "TempUnit", "C"),
    "Pressure": ("pressure", "PressureUnit", "hPa"),
    "CarbonDioxide": ("co2", None, "ppm"),
    "Illuminance": ("illuminance", None, "lx"),
}
CHIP_SENSORS = frozenset({"ESP32", "ESP8266"})


class TasmotaDecoder:
    """Tasmota devices under a configurable telemetry prefix and local time zone."""

    name = "tasmota"

    def __init__(self, prefix: str = "tele", zone: str = "Europe/London") -> None:
        self.prefix = prefix.strip().rstrip("/")
        if not self.prefix or "+" in self.prefix or "#" in self.prefix:
            raise ValueError(f"tasmota prefix {prefix!r} must be a plain topic such as 'tele'")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"tasmota zone {zone!r} is not a known time zone such as Europe/London") from None
        self.zone = zone
        self._head = self.prefix + "/"

    def subscriptions(self) -> list[str]:
        """Everything under the prefix."""
        return [self._head + "#"]

    def matches(self, topic: str) -> bool:
        """True for topics under the prefix."""
        return topic.startswith(self._head)

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> Decoded:
        """Decode SENSOR or LWT; other telemetry (STATE, INFO, ...) yields nothing."""
        device_id, _, kind = topic[len(self._head) :].rpartition("/")
        if not device_id:
            raise DecodeError(f"topic {topic!r} is not {self._head}{{topic}}/SENSOR or {self._head}{{topic}}/LWT")
        if kind == "LWT":
            return decode_status(device_id, payload, received_at, fmt=self.name)
        if kind != "SENSOR":
            return Decoded(device_id=None, format=self.name, meta={"ignored": f"{kind} telemetry"})
        doc = load_json(payload)
        if not isinstance(doc, dict):
            raise DecodeError(f"SENSOR message must be a JSON object, not {json_kind(doc)}")
        meta: dict[str, str] = {}
        ts = self._time(doc.get("Time"), received_at, meta)
        rejections: list[str] = []
        out: list[Reading] = []
        used: dict[str, str] = {}  # metric -> sensor
        unused: list[str] = []
        found = False
        for sensor, values in doc.items():
            if not isinstance(values, dict) or sensor in CHIP_SENSORS:
                continue
            for field, (metric, unit_key, default_unit) in FIELDS.items():
                raw = values.get(field)
                if raw is None:
                    continue
                found = True
                if metric in used:
                    unused.append(f"{sensor}.{field}")
                    continue
                unit = doc.get(unit_key, default_unit) if unit_key else default_unit
                before = len(rejections)
                r = reading(device_id, metric, ts, raw, unit if isinstance(unit, str) else default_unit, rejections)
                for i in range(before, len(rejections)):
                    rejections[i] = f"{sensor}.{field}: {rejections[i]}"
                if r is not None:
                    out.append(r)
                    used[metric] = sensor
        if used:
            meta["sensors"] = ", ".join(f"{metric}={sensor}" for metric, sensor in used.items())
        if unused:
            meta["not_used"] = ", ".join(unused)[:200]
        return Decoded(
            device_id=device_id if found else None,
            readings=tuple(out),
            rejections=tuple(rejections),
            format=self.name,
            meta=meta,
        )

    def _time(self, raw: object, received_at: datetime, meta: dict[str, str]) -> datetime:
        if raw is None:
            return received_at
        if not isinstance(raw, str):
            meta["time"] = f"Time {raw!r} is not a string; used the time received"[:200]
            return received_at
        try:
            ts = parse_local(raw, self.zone)
        except TIME_ERRORS as exc:
            meta["time"] = f"{str(exc)[:160]}; used the time received"
            return received_at
        if ts < EARLIEST:
            meta["time"] = f"device clock not set (Time {raw[:40]!r}); used the time received"
            return received_at
        return ts
