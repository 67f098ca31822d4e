"""LoRaWAN payloads: the built-in byte codecs, and how a decoded object becomes readings.

The Things Stack (`uplink_message.decoded_payload`) and ChirpStack (`object`) hand over whatever the
device's payload formatter returned, and the keys differ by vendor. `object_readings` maps the common
ones into the metric vocabulary; keys it does not know are ignored (and listed in Decoded.meta), so a
message is refused only when nothing usable remains.

Key mapping (case-insensitive; a CayenneLPP channel suffix such as `temperature_1` is dropped):
- a metric name itself (`temperature`, `relative_humidity`, `road_surface_temperature`, `surface_state`...)
  in its stored unit;
- temperature: temp, tempc, temp_c, temperature_c, TempC_SHT, ambient_temperature, temperatureSensor;
  degrees F: temperature_f, tempf, temp_f;
- relative_humidity: humidity, hum, Hum_SHT, humidity_pct, rh, relativeHumidity, humiditySensor;
- battery (%): battery_level, batteryLevel, battery_percent, battery_percentage, battery_pct, bat_pct;
- battery_voltage: BatV, bat_v, battery_v, battery_voltage, batteryVoltage, vbat, vdd, voltage,
  bat_voltage (volts, or millivolts when the value is 100 or more); battery_mv, bat_mv, vbat_mv (mV);
- plain `battery`, `bat`, `batt`: vendors disagree, so the value decides: a whole number up to 100 is a
  percentage, a fraction below 5 is volts (3.6), 1000 or more is millivolts;
- pressure (hPa): pressure, barometric_pressure, barometer, air_pressure; co2 (ppm): co2, co2_ppm;
  illuminance (lx): illuminance, illumination, lux, ILL_lx; dew_point: dew_point, dewpoint.
- Milesight's `history` list ({"timestamp": epoch s, ...}) gives readings at their own times.
External probes (Dragino TempC_DS) are ignored: their placement is unknown.
A value may be a number, a numeric string (Dragino decoders send "24.53"), or a ChirpStack CayenneLPP
channel map ({"1": 21.5}, lowest channel used); the first key giving a metric wins.

Built-in codecs, for devices whose server has no payload formatter (names as configured):
- `milesight-em300-th`: Milesight EM300-TH, after Milesight-IoT/SensorDecoders EM300-TH_Decoder.js:
  channel/type records, 01 75 battery % (uint8), 03 67 temperature (int16 LE / 10), 04 68 humidity
  (uint8 / 2), 20 CE history (uint32 LE time, int16 LE temperature / 10, uint8 humidity / 2, reserved),
  FF xx device information (skipped).
- `dragino-lht65`: Dragino LHT65 fPort 2 frames of 11 bytes, after TheThingsNetwork/lorawan-devices
  vendor/dragino/lht65.js: BatV = bytes 0-1 & 0x3FFF mV, TempC_SHT int16 BE / 100, Hum_SHT
  (bytes 4-5 & 0x0FFF) / 10, byte 6 the external sensor type, bytes 7-8 its value.
Each codec returns the same object its vendor's decoder returns, so it goes through the same mapping.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from core.metrics import METRICS
from core.model import Decoded, DecodeError, Reading
from core.timeparse import from_epoch

from .base import as_number, json_kind, reading

NO_CODEC = "no decoded payload and no codec for this device"
MAX_HISTORY = 1000

# (fields, problems): the vendor decoder's object, and reasons for parts of the frame that were dropped
CodecResult = tuple[dict[str, Any], list[str]]
Codec = Callable[[bytes, int | None], CodecResult]

_EITHER = "battery: percent, volts or millivolts by value"
_VOLTS = "volts, or millivolts from 100"
_KEYS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "temperature",
        "C",
        ("temp", "tempc", "temp_c", "temperature_c", "tempc_sht", "ambient_temperature", "temperaturesensor"),
    ),
    ("temperature", "F", ("temperature_f", "tempf", "temp_f")),
    (
        "relative_humidity",
        "%",
        ("humidity", "hum", "hum_sht", "humidity_pct", "rh", "relativehumidity", "humiditysensor"),
    ),
    (
        "battery",
        "%",
        ("battery_level", "batterylevel", "battery_percent", "battery_percentage", "battery_pct", "bat_pct"),
    ),
    ("battery", _EITHER, ("battery", "bat", "batt")),
    (
        "battery_voltage",
        _VOLTS,
        ("batv", "bat_v", "battery_v", "battery_voltage", "batteryvoltage", "vbat", "vdd", "voltage", "bat_voltage"),
    ),
    ("battery_voltage", "mV", ("battery_mv", "bat_mv", "batterymv", "vbat_mv")),
    ("pressure", "hPa", ("barometric_pressure", "barometer", "air_pressure")),
    ("co2", "ppm", ("co2_ppm",)),
    ("illuminance", "lx", ("illumination", "lux", "ill_lx", "illuminancesensor")),
    ("dew_point", "C", ("dewpoint",)),
)
_ALIASES: dict[str, tuple[str, str | None]] = {key: (metric, unit) for metric, unit, keys in _KEYS for key in keys}
_CHANNEL_SUFFIX = re.compile(r"_\d{1,3}$")


def _target(key: str) -> tuple[str, str | None] | None:
    """The metric (and unit, or a rule for it) a decoded-payload key names, or None."""
    k = key.strip().lower()
    for candidate in (k, _CHANNEL_SUFFIX.sub("", k)):
        if candidate in _ALIASES:
            return _ALIASES[candidate]
        if candidate in METRICS:
            return candidate, None
    return None


def _scalar(raw: object) -> object:
    if isinstance(raw, dict):  # ChirpStack's CayenneLPP codec: {"temperatureSensor": {"1": 21.5}}
        channels = sorted((k for k in raw if k.isascii() and k.isdigit() and len(k) <= 3), key=int)
        if channels:
            return as_number(raw[channels[0]])
    return as_number(raw)


def _unit(rule: str | None, value: object) -> str | None:
    if rule not in (_EITHER, _VOLTS):
        return rule
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None  # reading() refuses it with the reason
    if rule == _VOLTS:
        return "mV" if value >= 100 else "V"
    if value >= 1000:
        return "mV"
    if 0 < value < 5 and value != int(value):
        return "V"
    return "%"


def _map_fields(
    device_id: str, fields: Mapping[str, Any], ts: datetime, rejections: list[str], ignored: list[str], where: str
) -> list[Reading]:
    out: list[Reading] = []
    taken: set[str] = set()
    for key, raw in fields.items():
        if key in ("history", "timestamp"):
            continue
        target = _target(key)
        if target is None:
            ignored.append(key)
            continue
        metric, rule = target
        value = _scalar(raw)
        if value is None:
            continue
        unit = _unit(rule, value)
        if metric in ("battery", "battery_voltage") and unit is not None:
            metric = "battery_voltage" if unit in ("V", "mV") else "battery"
        if metric in taken:
            ignored.append(key)
            continue
        before = len(rejections)
        r = reading(device_id, metric, ts, value, unit, rejections)
        for i in range(before, len(rejections)):
            rejections[i] = f"{where}{key}: {rejections[i]}"
        if r is not None:
            out.append(r)
            taken.add(r.metric)
    return out


def object_readings(
    device_id: str, obj: Mapping[str, Any], ts: datetime, rejections: list[str]
) -> tuple[list[Reading], list[str]]:
    """Readings from a decoded payload object (and its Milesight-style history), and the keys ignored."""
    ignored: list[str] = []
    out = _map_fields(device_id, obj, ts, rejections, ignored, "")
    history = obj.get("history")
    if isinstance(history, list):
        if len(history) > MAX_HISTORY:
            rejections.append(f"history has {len(history)} points; only the first {MAX_HISTORY} are read")
        for i, point in enumerate(history[:MAX_HISTORY]):
            where = f"history[{i}]."
            if not isinstance(point, dict):
                rejections.append(f"history[{i}] must be an object, not {json_kind(point)}")
                continue
            stamp = point.get("timestamp")
            if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
                rejections.append(f"history[{i}] has no numeric 'timestamp' (epoch seconds)")
                continue
            try:
                point_ts = from_epoch(float(stamp), unit="s")
            except ValueError as exc:
                rejections.append(f"history[{i}]: {exc}")
                continue
            out.extend(_map_fields(device_id, point, point_ts, rejections, ignored, where))
    return out, ignored


# --- the codecs ------------------------------------------------------------------------------------

_MILESIGHT_INFO = {0x01: 1, 0x09: 2, 0x0A: 2, 0xFF: 2, 0x16: 8, 0x0F: 1, 0xFE: 1, 0x0B: 1}  # FF xx: version, SN...
_MILESIGHT_SIZES = {(0x01, 0x75): 1, (0x03, 0x67): 2, (0x04, 0x68): 1, (0x20, 0xCE): 8}


def _int16(b: bytes, *, little: bool) -> int:
    return int.from_bytes(b, "little" if little else "big", signed=True)


def milesight_em300_th(data: bytes, f_port: int | None) -> CodecResult:
    """Decode a Milesight EM300-TH frame as Milesight's own decoder does (fPort is not used)."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            problems.append(f"Milesight EM300-TH: frame ends inside a channel header at byte {i}")
            break
        channel, kind = data[i], data[i + 1]
        size = _MILESIGHT_INFO.get(kind) if channel == 0xFF else _MILESIGHT_SIZES.get((channel, kind))
        if size is None:
            if channel not in (0xFE, 0xFF):  # FE/FF with other types are replies to configuration downlinks
                problems.append(
                    f"Milesight EM300-TH: unknown channel 0x{channel:02x} type 0x{kind:02x} at byte {i}; "
                    "rest of frame ignored"
                )
            break
        body = data[i + 2 : i + 2 + size]
        if len(body) < size:
            problems.append(f"Milesight EM300-TH: channel 0x{channel:02x} at byte {i} is cut short")
            break
        i += 2 + size
        if channel == 0x01:
            out["battery"] = body[0]
        elif channel == 0x03:
            out["temperature"] = _int16(body, little=True) / 10
        elif channel == 0x04:
            out["humidity"] = body[0] / 2
        elif channel == 0x20:
            point = {
                "timestamp": int.from_bytes(body[0:4], "little"),
                "temperature": _int16(body[4:6], little=True) / 10,
                "humidity": body[6] / 2,
            }
            out.setdefault("history", []).append(point)
    return out, problems


_LHT65_EXT = {
    0: "No external sensor",
    1: "Temperature Sensor",
    4: "Interrupt Sensor send",
    5: "Illumination Sensor",
    6: "ADC Sensor",
    7: "Interrupt Sensor count",
    8: "Interrupt Sensor count",
    9: "DS18B20 & timestamp",
    15: "DS18B20ID",
}


def dragino_lht65(data: bytes, f_port: int | None) -> CodecResult:
    """Decode a Dragino LHT65 measurement frame (fPort 2, 11 bytes) as the TTN device repository's codec does."""
    if f_port is not None and f_port != 2:
        raise DecodeError(f"Dragino LHT65: unknown fPort {f_port}; measurements arrive on fPort 2")
    if len(data) != 11:
        raise DecodeError(f"Dragino LHT65: frame is {len(data)} bytes; a measurement frame has 11")
    if data[6] & 0x40:
        raise DecodeError("Dragino LHT65: datalog poll replies are not decoded")
    ext = data[6] & 0x0F
    out: dict[str, Any] = {}
    if ext == 9:
        out["TempC_DS"] = round(_int16(data[0:2], little=False) / 100, 2)
        out["Bat_status"] = data[4] >> 6
    else:
        out["BatV"] = (int.from_bytes(data[0:2], "big") & 0x3FFF) / 1000
        out["Bat_status"] = data[0] >> 6
    if ext != 15:
        out["TempC_SHT"] = round(_int16(data[2:4], little=False) / 100, 2)
        out["Hum_SHT"] = round((int.from_bytes(data[4:6], "big") & 0x0FFF) / 10, 1)
    if data[6] & 0x80:
        out["No_connect"] = "Sensor no connection"
    value = int.from_bytes(data[7:9], "big")
    if ext == 0:
        out["Ext_sensor"] = _LHT65_EXT[0]
    elif ext == 1:
        out["Ext_sensor"] = _LHT65_EXT[1]
        out["TempC_DS"] = round(_int16(data[7:9], little=False) / 100, 2)
    elif ext in _LHT65_EXT:
        out["Work_mode"] = _LHT65_EXT[ext]
        if ext == 4:
            out["Exti_pin_level"] = "High" if data[7] else "Low"
            out["Exti_status"] = "True" if data[8] else "False"
        elif ext == 5:
            out["ILL_lx"] = value
        elif ext == 6:
            out["ADC_V"] = value / 1000
        elif ext == 7:
            out["Exit_count"] = value
        elif ext == 8:
            out["Exit_count"] = int.from_bytes(data[7:11], "big")
        elif ext == 9:
            out["Systimestamp"] = int.from_bytes(data[7:11], "big")
        elif ext == 15:
            out["ID"] = " ".join(f"{b:02x}" for b in (*data[2:6], *data[7:11])) + " "
    return out, []


CODECS: dict[str, Codec] = {
    "milesight-em300-th": milesight_em300_th,
    "dragino-lht65": dragino_lht65,
}


class CodecTable:
    """Which built-in codec decodes a device's bytes: by device (id or DevEUI), else by application."""

    def __init__(self, devices: Mapping[str, str] | None = None, applications: Mapping[str, str] | None = None) -> None:
        self.devices = self._check(devices or {}, "device")
        self.applications = self._check(applications or {}, "application")

    @staticmethod
    def _check(table: Mapping[str, str], what: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, name in table.items():
            if name not in CODECS:
                raise ValueError(f"codec {name!r} for {what} {key!r} is not one of {', '.join(sorted(CODECS))}")
            out[str(key).strip().lower()] = name
        return out

    def codec_for(self, device_keys: Iterable[object], application_keys: Iterable[object]) -> str | None:
        """The codec named for the first matching device key, else for the first matching application key."""
        for table, keys in ((self.devices, device_keys), (self.applications, application_keys)):
            for key in keys:
                if isinstance(key, str) and key.strip().lower() in table:
                    return table[key.strip().lower()]
        return None


def uplink_decoded(
    *,
    fmt: str,
    device_id: str,
    ts: datetime,
    decoded_payload: object,
    data: object,
    f_port: object,
    codec: str | None,
    meta: dict[str, str],
) -> Decoded:
    """Readings from one LoRaWAN uplink: its decoded object if the server has one, else the built-in codec."""
    rejections: list[str] = []
    if isinstance(decoded_payload, dict) and decoded_payload:
        fields: Mapping[str, Any] = decoded_payload
        source = "decoded payload"
    elif decoded_payload not in (None, {}) and codec is None:
        raise DecodeError(f"decoded payload must be a JSON object, not {json_kind(decoded_payload)}")
    else:
        if codec is None:
            raise DecodeError(NO_CODEC)
        raw = _payload_bytes(data, codec)
        port = f_port if isinstance(f_port, int) and not isinstance(f_port, bool) else None
        fields, problems = CODECS[codec](raw, port)
        meta["codec"] = codec
        if not fields:
            if problems:
                raise DecodeError(f"bytes are not a {codec} frame: {problems[0]}")
            meta["note"] = "frame carries no measurements (device information)"
            return Decoded(device_id=device_id, format=fmt, meta=meta)
        rejections.extend(problems)
        source = f"codec {codec}"
    readings, ignored = object_readings(device_id, fields, ts, rejections)
    if ignored:
        meta["ignored"] = _short_list(ignored)
    if not readings and not rejections:
        raise DecodeError(f"{source} has no value Placewatch can use (keys: {_short_list(list(fields))})")
    return Decoded(device_id=device_id, readings=tuple(readings), rejections=tuple(rejections), format=fmt, meta=meta)


def _payload_bytes(data: object, codec: str) -> bytes:
    if data is None or data == "":
        raise DecodeError(f"uplink has no payload bytes for codec {codec}")
    if not isinstance(data, str):
        raise DecodeError(f"payload bytes must be a base64 string, not {json_kind(data)}")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError(f"payload bytes {data[:40]!r} are not valid base64") from None


def _short_list(items: list[str], limit: int = 200) -> str:
    text = ", ".join(dict.fromkeys(items))
    return text if len(text) <= limit else text[: limit - 3] + "..."
