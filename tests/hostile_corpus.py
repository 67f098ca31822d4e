"""Hostile input for every decoder: what broken devices, careless integrations and attackers send.

Each entry is (kind, topic, payload, words): `words` are the key words the dead-letter reason must
contain (case-insensitive), or None when the contract says the message is harmlessly ignored (nothing
stored, nothing dead-lettered: Zigbee2MQTT bridge topics, a message of nulls, other event types).
No entry stores a reading, so a test can check that only the valid traffic around them was stored.

Topics are built from `Ids`, so each test run has its own topic trees and devices on a shared broker.
`valid(ids, k)` makes the k-th valid message (rotating over the formats) and the reading it stores.
"""

# ruff: noqa: E501 - the corpus is a table, one message per line

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from tests.helpers import home, sensor, station

SIZE_LIMIT = 256 * 1024  # PLACEWATCH_MAX_PAYLOAD_BYTES in the tests (the default)
IGNORED = None


@dataclass(frozen=True, slots=True)
class Hostile:
    """One hostile message and what its dead-letter reason must say (None: harmlessly ignored)."""

    kind: str
    topic: str
    payload: bytes
    words: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Ids:
    """Topic trees and device ids of one test, all carrying its unique suffix."""

    uid: str

    @property
    def native(self) -> str:
        """Native topic prefix (PLACEWATCH_TOPIC_PREFIX)."""
        return f"pwtest-{self.uid}/v1"

    @property
    def station(self) -> str:
        """A registered road station (native format)."""
        return f"hs-{self.uid}"

    @property
    def tts_app(self) -> str:
        """The Things Stack application."""
        return f"hostile-{self.uid}"

    @property
    def tts_dev(self) -> str:
        """A registered TTS device (decoded payloads)."""
        return f"tts-{self.uid}"

    @property
    def tts_lht(self) -> str:
        """A registered TTS device whose bytes go through the dragino-lht65 codec."""
        return f"tts-lht-{self.uid}"

    @property
    def cs_app(self) -> str:
        """ChirpStack application id."""
        return f"hostile-{self.uid}"

    @property
    def cs_eui(self) -> str:
        """A registered ChirpStack DevEUI (16 lower-case hex digits)."""
        return f"a84041ff{self.uid}"

    @property
    def z2m(self) -> str:
        """Zigbee2MQTT base topic."""
        return f"z2m-{self.uid}"

    @property
    def z2m_dev(self) -> str:
        """A registered Zigbee2MQTT friendly name (with a '/' and a space)."""
        return f"flat {self.uid}/kitchen"

    @property
    def tele(self) -> str:
        """Tasmota telemetry prefix."""
        return f"tele-{self.uid}"

    @property
    def tasmota_dev(self) -> str:
        """A registered Tasmota topic."""
        return f"tasmota_{self.uid}"

    @property
    def senml(self) -> str:
        """SenML topic root."""
        return f"senml-{self.uid}"

    @property
    def senml_dev(self) -> str:
        """A registered SenML device (its base name without the trailing ':')."""
        return f"urn:dev:mac:{self.uid}"

    def format_options(self) -> dict[str, dict[str, str]]:
        """PLACEWATCH_FORMAT_OPTIONS: every format on this test's own topics (other tests share the broker)."""
        return {
            "tts": {"topics": f"v3/{self.tts_app}/#", "codecs": f"{self.tts_lht}=dragino-lht65"},
            "chirpstack": {"topics": f"application/{self.cs_app}/#"},
            "zigbee2mqtt": {"base_topic": self.z2m},
            "tasmota": {"prefix": self.tele},
            "senml": {"topics": f"{self.senml}/#"},
        }

    def devices(self) -> list[str]:
        """Every registered device of the test."""
        return [self.station, self.tts_dev, self.tts_lht, self.cs_eui, self.z2m_dev, self.tasmota_dev, self.senml_dev]

    def registry(self) -> list[dict[str, Any]]:
        """Registry features for the devices."""
        hid = f"hostile-home-{self.uid}"
        return [station(self.station), home(hid), *[sensor(d, hid) for d in self.devices()[1:]]]


def _j(doc: object) -> bytes:
    return orjson.dumps(doc)


def _nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def _rfc(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def corpus(ids: Ids, now: datetime | None = None) -> list[Hostile]:
    """The hostile messages, for every format; at least one of each kind the issue names."""
    now = now or datetime.now(UTC)
    ts = _rfc(now - timedelta(hours=3))
    future = _rfc(now + timedelta(days=3650))
    n = f"{ids.native}/devices/{ids.station}/readings"
    n_status = f"{ids.native}/devices/{ids.station}/status"
    tts = f"v3/{ids.tts_app}/devices/{ids.tts_dev}/up"
    tts_lht = f"v3/{ids.tts_app}/devices/{ids.tts_lht}/up"
    cs = f"application/{ids.cs_app}/device/{ids.cs_eui}/event/up"
    cs_status = f"application/{ids.cs_app}/device/{ids.cs_eui}/event/status"
    z = f"{ids.z2m}/{ids.z2m_dev}"
    tas = f"{ids.tele}/{ids.tasmota_dev}/SENSOR"
    sen = f"{ids.senml}/gw"
    bn = f"{ids.senml_dev}:"

    def up(payload: dict[str, Any], dev: str | None = ids.tts_dev, **extra: Any) -> bytes:
        doc: dict[str, Any] = {"uplink_message": {"received_at": ts, **payload}, **extra}
        if dev is not None:
            doc["end_device_ids"] = {"device_id": dev, "application_ids": {"application_id": ids.tts_app}}
        return _j(doc)

    def cs_up(obj: object, eui: object = ids.cs_eui, **extra: Any) -> bytes:
        return _j({"deviceInfo": {"devEui": eui, "applicationId": ids.cs_app}, "time": ts, "object": obj, **extra})

    def native(values: object, **extra: Any) -> bytes:
        return _j({"ts": ts, "values": values, **extra})

    binary = bytes(range(256)) * 4  # every byte value: not UTF-8, not JSON
    big_json = _j([{"ts": ts, "values": {"air_temperature": 1.0}}] * 9000)  # valid but over the size limit
    c = [
        # --- native: bytes and JSON syntax -------------------------------------------------------------
        Hostile("truncated JSON", n, b'{"ts": "' + ts.encode() + b'", "values": {"air_temperature": 1.5,', ("not valid JSON",)),
        Hostile("binary", n, binary, ("not UTF-8",)),
        Hostile("invalid UTF-8 inside a JSON string", n, b'{"values": {"air_temperature": 1}, "note": "\xc3\x28"}', ("not UTF-8",)),
        Hostile("UTF-16 text", n, '{"values": {"air_temperature": 1}}'.encode("utf-16"), ("not UTF-8",)),
        Hostile("UTF-8 byte order mark", n, b'\xef\xbb\xbf{"values": {"air_temperature": 1}}', ("not valid JSON", "BOM")),
        Hostile("lone surrogate escape", n, b'{"values": {"air_temperature": 1}, "x": "\\ud800"}', ("not valid JSON", "surrogate")),
        Hostile("empty payload", n, b"", ("empty payload",)),
        Hostile("only whitespace", n, b"  \r\n\t ", ("not valid JSON",)),
        Hostile("trailing garbage", n, native({"air_temperature": 1}) + b"}}", ("not valid JSON",)),
        Hostile("trailing commas", n, b'{"values": {"air_temperature": 1,},}', ("not valid JSON",)),
        Hostile("NaN literal", n, b'{"values": {"air_temperature": NaN}}', ("not valid JSON",)),
        Hostile("Infinity literal", n, b'{"values": {"air_temperature": -Infinity}}', ("not valid JSON",)),
        Hostile("number overflowing a double", n, b'{"values": {"air_temperature": 1e400}}', ("not valid JSON", "infinity")),
        Hostile("nesting past the parser's limit", n, ('{"values": ' + _nested(2000) + "}").encode(), ("not valid JSON", "depth limit")),
        Hostile("deep nesting as a value", n, ('{"values": {"air_temperature": ' + _nested(500) + "}}").encode(), ("must be a number", "array")),
        Hostile("deep nesting as the time", n, ('{"ts": ' + _nested(1000) + ', "values": {"air_temperature": 1}}').encode(), ("time must be", "array")),
        Hostile("deep nesting as the device id", n, ('{"device_id": ' + _nested(1000) + ', "values": {"air_temperature": 1}}').encode(), ("device_id", "array")),
        # --- native: shapes and types ---------------------------------------------------------------
        Hostile("a JSON string, not an object", n, b'"air_temperature=1"', ("must be a JSON object",)),
        Hostile("a JSON number, not an object", n, b"42", ("must be a JSON object",)),
        Hostile("JSON null", n, b"null", ("must be a JSON object", "not null")),
        Hostile("empty array", n, b"[]", ("empty array",)),
        Hostile("array of non-objects", n, b"[1, \"two\", null]", ("entry 0: must be an object, not a number",)),
        Hostile("too many entries", n, _j([{}] * 10_001), ("10001 entries", "at most")),
        Hostile("values not an object", n, native([1.5, 2.5]), ("'values' must be an object",)),
        Hostile("values empty", n, native({}), ("'values' is empty",)),
        Hostile("units not an object", n, native({"air_temperature": 1}, units=["C"]), ("'units' must be an object",)),
        Hostile("number as a string with a unit", n, native({"air_temperature": "1.5C"}), ("must be a number", "str")),
        Hostile("boolean for a number", n, native({"air_temperature": True}), ("must be a number", "bool")),
        Hostile("object for a number", n, native({"air_temperature": {"value": 1.5, "unit": "C"}}), ("must be a number", "JSON object")),
        Hostile("number for a surface state", n, native({"surface_state": 3}), ("surface_state", "must be one of")),
        Hostile("surface state outside the vocabulary", n, native({"surface_state": "slushy"}), ("surface_state", "is not one of")),
        Hostile("a message of nulls", n, native({"air_temperature": None, "road_surface_temperature": None}), IGNORED),
        # --- native: values and units ---------------------------------------------------------------
        Hostile("out of range", n, native({"road_surface_temperature": 150.0}), ("outside the physical range",)),
        Hostile("huge value", n, native({"air_temperature": 1e308}), ("outside the physical range",)),
        Hostile("negative humidity", n, native({"relative_humidity": -5}), ("relative_humidity", "outside the physical range")),
        Hostile("battery over 100 %", n, native({"battery": 250}), ("battery", "outside the physical range")),
        Hostile("unknown metric", n, native({"wind_speed": 3.2}), ("unknown metric", "wind_speed")),
        Hostile("metric spelled differently", n, native({"Air_Temperature": 3.2}), ("unknown metric",)),
        Hostile("unknown unit", n, native({"air_temperature": 5}, units={"air_temperature": "furlongs"}), ("unknown unit", "furlongs")),
        Hostile("unit for a categorical metric", n, native({"surface_state": 3}, units={"surface_state": "C"}), ("unknown unit", "surface_state")),
        Hostile("Fahrenheit out of range", n, native({"air_temperature": 900}, units={"air_temperature": "F"}), ("outside the physical range",)),
        Hostile("NUL in a metric name", n, native({"air\u0000temperature": 1}), ("unknown metric",)),
        # --- native: time -------------------------------------------------------------------------
        Hostile("far-future time", n, _j({"ts": future, "values": {"air_temperature": 1}}), ("in the future",)),
        Hostile("far-future epoch ms", n, _j({"ts": int((now + timedelta(days=30)).timestamp() * 1000), "values": {"air_temperature": 1}}), ("in the future",)),
        Hostile("epoch zero", n, _j({"ts": 0, "values": {"air_temperature": 1}}), ("before 2000-01-01",)),
        Hostile("epoch zero as text", n, _j({"ts": "1970-01-01T00:00:00Z", "values": {"air_temperature": 1}}), ("before 2000-01-01",)),
        Hostile("negative epoch", n, _j({"ts": -86_400_000, "values": {"air_temperature": 1}}), ("before 2000-01-01",)),
        Hostile("time with no zone", n, _j({"ts": "2026-01-15T06:30:00.000", "values": {"air_temperature": 1}}), ("no time zone",)),
        Hostile("time not RFC 3339", n, _j({"ts": "15/01/2026 06:30", "values": {"air_temperature": 1}}), ("not RFC 3339",)),
        Hostile("time out of range", n, _j({"ts": 1e300, "values": {"air_temperature": 1}}), ("out of range",)),
        Hostile("offset past year 9999", n, _j({"ts": "9999-12-31T23:59:59-23:59", "values": {"air_temperature": 1}}), ("out of range",)),
        Hostile("time as an object", n, _j({"ts": {"when": "now"}, "values": {"air_temperature": 1}}), ("time must be", "object")),
        # --- native: devices and topics -----------------------------------------------------------
        Hostile("payload names another device", n, native({"air_temperature": 1}, device_id="someone-else"), ("payload names device", "someone-else")),
        Hostile("unknown device", f"{ids.native}/devices/ghost-{ids.uid}/readings", native({"air_temperature": 1}), ("unknown device", f"ghost-{ids.uid}")),
        Hostile("unknown device with unicode id", f"{ids.native}/devices/gh\u00f8st \u2603 {ids.uid}/readings", native({"air_temperature": 1}), ("unknown device", "not in the registry")),
        Hostile("topic with no device", f"{ids.native}/devices/readings", native({"air_temperature": 1}), ("topic", "readings", "status")),
        Hostile("topic with an empty device", f"{ids.native}/devices//readings", native({"air_temperature": 2}), ("topic", "readings", "status")),
        Hostile("topic of an unknown kind", f"{ids.native}/devices/{ids.station}/telemetry", native({"air_temperature": 1}), ("expected 'readings' or 'status'",)),
        Hostile("topic with an extra level", f"{n}/extra", native({"air_temperature": 1}), ("expected 'readings' or 'status'",)),
        Hostile("status not online/offline", n_status, b"maybe", ("must be 'online' or 'offline'",)),
        Hostile("status as deep JSON", n_status, ('{"state": ' + _nested(1000, '"online"') + "}").encode(), ("must be 'online' or 'offline'",)),
        Hostile("status in binary", n_status, b"\xff\xfe\x00\x01", ("not UTF-8",)),
        Hostile("status truncated JSON", n_status, b'{"state": "onl', ("not valid JSON",)),
        # --- size -----------------------------------------------------------------------------------
        Hostile("1 MB payload", n, b"\x00" * 1_000_000, ("1000000 bytes", "larger than the limit")),
        Hostile("valid JSON over the size limit", n, big_json, (f"{len(big_json)} bytes", "larger than the limit")),
        Hostile("size limit on another format's topic", sen, b"[" + b" " * (SIZE_LIMIT + 10) + b"]", ("larger than the limit",)),
        # --- The Things Stack ---------------------------------------------------------------------
        Hostile("TTS truncated JSON", tts, up({"decoded_payload": {"temperature": 20}})[:-7], ("not valid JSON",)),
        Hostile("TTS not an object", tts, b"[1, 2]", ("must be a JSON object",)),
        Hostile("TTS no uplink_message", tts, _j({"end_device_ids": {"device_id": ids.tts_dev}}), ("no uplink_message",)),
        Hostile("TTS payload names another device", tts, up({"decoded_payload": {"temperature": 20}}, dev="intruder"), ("payload names device", "intruder")),
        Hostile("TTS device id not a string", tts, _j({"end_device_ids": {"device_id": 42}, "uplink_message": {"decoded_payload": {"temperature": 20}}}), ("device_id", "must be a string")),
        Hostile("TTS no decoded payload and no codec", tts, up({"frm_payload": "AQI="}), ("no decoded payload and no codec",)),
        Hostile("TTS decoded payload not an object", tts, up({"decoded_payload": [20, 50]}), ("decoded payload must be a JSON object",)),
        Hostile("TTS only unknown keys", tts, up({"decoded_payload": {"radiation": 3, "gps": [1, 2]}}), ("no value Placewatch can use", "radiation")),
        Hostile("TTS out of range", tts, up({"decoded_payload": {"temperature": 150}}), ("temperature", "outside the physical range")),
        Hostile("TTS string value", tts, up({"decoded_payload": {"humidity": "damp"}}), ("must be a number",)),
        Hostile("TTS deep nesting", tts, ('{"uplink_message": {"decoded_payload": {"t": ' + _nested(40) + "}}}").encode(), ("nested deeper than 32",)),
        Hostile("TTS time not RFC 3339", tts, _j({"uplink_message": {"received_at": "soon", "decoded_payload": {"temperature": 20}}}), ("received_at", "not RFC 3339")),
        Hostile("TTS time a number", tts, _j({"uplink_message": {"received_at": 1700000000, "decoded_payload": {"temperature": 20}}}), ("must be an RFC 3339 string",)),
        Hostile("TTS far-future time", tts, _j({"uplink_message": {"received_at": future, "decoded_payload": {"temperature": 20}}}), ("in the future",)),
        Hostile("TTS bad base64 for a codec", tts_lht, up({"frm_payload": "!!not base64!!"}, dev=ids.tts_lht), ("not valid base64",)),
        Hostile("TTS frame too short for its codec", tts_lht, up({"frm_payload": "AQI=", "f_port": 2}, dev=ids.tts_lht), ("dragino", "frame is 2 bytes")),
        Hostile("TTS topic with no device", f"v3/{ids.tts_app}/devices/up", up({"decoded_payload": {"temperature": 20}}, dev=None), ("topic names no device",)),
        Hostile("TTS unknown device", f"v3/{ids.tts_app}/devices/ghost-{ids.uid}/up", up({"decoded_payload": {"temperature": 20}}, dev=f"ghost-{ids.uid}"), ("unknown device",)),
        Hostile("TTS join event", f"v3/{ids.tts_app}/devices/{ids.tts_dev}/join", _j({"join_accept": {}}), IGNORED),
        Hostile("TTS NUL in a payload key", tts, up({"decoded_payload": {"temp\u0000x": 5, "gps": 1}}), ("no value Placewatch can use", "temp\\x00x")),
        Hostile("TTS NUL in a device id", f"v3/{ids.tts_app}/devices/up", up({"decoded_payload": {"temperature": 20}}, dev="bad\u0000id"), ("unknown device",)),
        # --- ChirpStack -----------------------------------------------------------------------------
        Hostile("ChirpStack binary", cs, binary[::-1], ("not UTF-8",)),
        Hostile("ChirpStack not an object", cs, b'"up"', ("must be a JSON object",)),
        Hostile("ChirpStack payload names another device", cs, cs_up({"temperature": 20}, eui="0000000000000001"), ("payload names device",)),
        Hostile("ChirpStack DevEUI not a string", cs, cs_up({"temperature": 20}, eui=12345), ("devEui", "must be a string")),
        Hostile("ChirpStack object not an object", cs, cs_up("21.5"), ("decoded payload must be a JSON object",)),
        Hostile("ChirpStack time not RFC 3339", cs, _j({"deviceInfo": {"devEui": ids.cs_eui}, "time": "yesterday", "object": {"temperature": 20}}), ("not RFC 3339",)),
        Hostile("ChirpStack time a number", cs, _j({"deviceInfo": {"devEui": ids.cs_eui}, "time": 0, "object": {"temperature": 20}}), ("must be an RFC 3339 string",)),
        Hostile("ChirpStack epoch-zero time", cs, _j({"deviceInfo": {"devEui": ids.cs_eui}, "time": "1970-01-01T00:00:00+00:00", "object": {"temperature": 20}}), ("before 2000-01-01",)),
        Hostile("ChirpStack channel map out of range", cs, cs_up({"temperatureSensor": {"1": 999}}), ("outside the physical range",)),
        Hostile("ChirpStack status battery out of range", cs_status, _j({"deviceInfo": {"devEui": ids.cs_eui}, "batteryLevel": 250}), ("battery", "outside the physical range")),
        Hostile("ChirpStack status battery a string", cs_status, _j({"deviceInfo": {"devEui": ids.cs_eui}, "batteryLevel": "full"}), ("battery", "must be a number")),
        Hostile("ChirpStack wrong topic shape", f"application/{ids.cs_app}/devices/{ids.cs_eui}/event/up", _j({"object": {"temperature": 20}}), ("no deviceInfo.devEui", "topic names no device")),
        Hostile("ChirpStack unknown device", f"application/{ids.cs_app}/device/00000000deadbeef/event/up", cs_up({"temperature": 20}, eui="00000000deadbeef"), ("unknown device", "00000000deadbeef")),
        Hostile("ChirpStack join event", f"application/{ids.cs_app}/device/{ids.cs_eui}/event/join", _j({"devAddr": "01020304"}), IGNORED),
        # --- Zigbee2MQTT ----------------------------------------------------------------------------
        Hostile("Zigbee2MQTT bridge state", f"{ids.z2m}/bridge/state", b"\xff\xfe not json", IGNORED),
        Hostile("Zigbee2MQTT bridge log", f"{ids.z2m}/bridge/logging", _j({"level": "error", "message": "x" * 5000}), IGNORED),
        Hostile("Zigbee2MQTT command topic", f"{z}/set", _j({"state": "ON"}), IGNORED),
        Hostile("Zigbee2MQTT a message of nulls", z, _j({"temperature": None, "humidity": None, "battery": None}), IGNORED),
        Hostile("Zigbee2MQTT a light, nothing measured", z, _j({"state": "ON", "brightness": 254, "linkquality": 87}), IGNORED),
        Hostile("Zigbee2MQTT not an object", z, b'"ON"', ("must be a JSON object",)),
        Hostile("Zigbee2MQTT humidity out of range", z, _j({"humidity": 140}), ("relative_humidity", "outside the physical range")),
        Hostile("Zigbee2MQTT string temperature", z, _j({"temperature": "warm"}), ("must be a number",)),
        Hostile("Zigbee2MQTT absurd voltage", z, _j({"voltage": 1e9}), ("battery_voltage", "outside the physical range")),
        Hostile("Zigbee2MQTT deep nesting", z, ('{"temperature": 20, "x": ' + _nested(40) + "}").encode(), ("nested deeper than 32",)),
        Hostile("Zigbee2MQTT availability garbage", f"{z}/availability", b"perhaps", ("must be 'online' or 'offline'",)),
        Hostile("Zigbee2MQTT far-future last_seen", z, _j({"temperature": 20, "last_seen": future}), ("in the future",)),
        Hostile("Zigbee2MQTT unknown device", f"{ids.z2m}/ghost {ids.uid}", _j({"temperature": 20}), ("unknown device",)),
        # --- Tasmota --------------------------------------------------------------------------------
        Hostile("Tasmota truncated JSON", tas, b'{"Time":"2026-01-15T06:30:00","AM2301":{"Temperature":', ("not valid JSON",)),
        Hostile("Tasmota not an object", tas, b"[20.5]", ("must be a JSON object",)),
        Hostile("Tasmota string temperature", tas, _j({"AM2301": {"Temperature": "hot"}}), ("AM2301.Temperature", "must be a number")),
        Hostile("Tasmota out of range", tas, _j({"AM2301": {"Temperature": 999}}), ("AM2301.Temperature", "outside the physical range")),
        Hostile("Tasmota unknown unit", tas, _j({"TempUnit": "R", "AM2301": {"Temperature": 20}}), ("unknown unit", "'R'")),
        Hostile("Tasmota topic with no device", f"{ids.tele}/SENSOR", _j({"AM2301": {"Temperature": 20}}), ("topic", "SENSOR")),
        Hostile("Tasmota NUL in a sensor name", tas, _j({"AM\u00002301": {"Temperature": 999}}), ("AM\\x002301.Temperature", "outside the physical range")),
        Hostile("Tasmota STATE telemetry", f"{ids.tele}/{ids.tasmota_dev}/STATE", _j({"Uptime": "0T01:00:00"}), IGNORED),
        Hostile("Tasmota energy only", tas, _j({"ENERGY": {"Power": 5}}), IGNORED),
        Hostile("Tasmota chip temperature only", tas, _j({"ESP32": {"Temperature": 55.1}}), IGNORED),
        Hostile("Tasmota LWT garbage", f"{ids.tele}/{ids.tasmota_dev}/LWT", b"Rebooting", ("must be 'online' or 'offline'",)),
        Hostile("Tasmota unknown device", f"{ids.tele}/ghost_{ids.uid}/SENSOR", _j({"AM2301": {"Temperature": 20}}), ("unknown device",)),
        # --- SenML ----------------------------------------------------------------------------------
        Hostile("SenML not an array", sen, _j({"bn": bn, "n": "temperature", "v": 20}), ("must be a JSON array",)),
        Hostile("SenML empty pack", sen, b"[]", ("SenML pack is empty",)),
        Hostile("SenML must-understand field", sen, _j([{"bn": bn, "n": "temperature", "u": "Cel", "v": 20, "bver_": 9}]), ("must be understood",)),
        Hostile("SenML value a string", sen, _j([{"bn": bn, "n": "temperature", "u": "Cel", "v": "20"}]), ("v must be a number",)),
        Hostile("SenML out of range", sen, _j([{"bn": bn, "n": "temperature", "u": "Cel", "v": 500}]), ("outside the physical range",)),
        Hostile("SenML unknown unit", sen, _j([{"bn": bn, "n": "temperature", "u": "furlong", "v": 20}]), ("unknown unit",)),
        Hostile("SenML nothing usable", sen, _j([{"bn": bn, "n": "cpu", "u": "Cel", "v": 50}]), ("no record Placewatch can use",)),
        Hostile("SenML far-future time", sen, _j([{"bn": bn, "bt": 4_102_444_800, "n": "temperature", "u": "Cel", "v": 20}]), ("in the future",)),
        Hostile("SenML time before 2000", sen, _j([{"bn": bn, "bt": 300_000_000, "n": "temperature", "u": "Cel", "v": 20}]), ("before 2000-01-01",)),
        Hostile("SenML time overflows", sen, _j([{"bn": bn, "bt": 1e308, "t": 1e308, "n": "temperature", "u": "Cel", "v": 20}]), ("not a finite number",)),
        Hostile("SenML base name not a string", sen, _j([{"bn": 5, "n": "temperature", "u": "Cel", "v": 20}]), ("bn must be a string",)),
        Hostile("SenML NUL in the device name", sen, _j([{"bn": f"urn:dev:mac:{ids.uid}\u0000x:", "n": "temperature", "u": "Cel", "v": 20}]), ("unknown device",)),
        Hostile("SenML unknown device", sen, _j([{"bn": f"urn:dev:mac:ghost{ids.uid}:", "n": "temperature", "u": "Cel", "v": 20}]), ("unknown device",)),
        Hostile("SenML records not objects", sen, b'[1, "two", null]', ("must be an object",)),
    ]  # fmt: skip
    return c


def valid(ids: Ids, k: int, now: datetime | None = None) -> tuple[str, bytes, tuple[str, str, datetime]]:
    """The k-th valid message, rotating over the six formats, and the (device, metric, ts) it stores."""
    now = now or datetime.now(UTC)
    ts = (now - timedelta(hours=6) + timedelta(minutes=k)).replace(second=0, microsecond=0)
    v = round(15 + (k % 50) / 10, 1)
    which = k % 6
    if which == 0:
        topic = f"{ids.native}/devices/{ids.station}/readings"
        return topic, _j({"ts": _rfc(ts), "values": {"air_temperature": v}}), (ids.station, "air_temperature", ts)
    if which == 1:
        topic = f"v3/{ids.tts_app}/devices/{ids.tts_dev}/up"
        doc = {
            "end_device_ids": {"device_id": ids.tts_dev, "application_ids": {"application_id": ids.tts_app}},
            "uplink_message": {"received_at": _rfc(ts), "decoded_payload": {"temperature": v}},
        }
        return topic, _j(doc), (ids.tts_dev, "temperature", ts)
    if which == 2:
        topic = f"application/{ids.cs_app}/device/{ids.cs_eui}/event/up"
        doc = {"deviceInfo": {"devEui": ids.cs_eui}, "time": ts.isoformat(), "object": {"temperature": v}}
        return topic, _j(doc), (ids.cs_eui, "temperature", ts)
    if which == 3:
        topic = f"{ids.z2m}/{ids.z2m_dev}"
        doc = {"temperature": v, "linkquality": 90, "last_seen": int(ts.timestamp() * 1000)}
        return topic, _j(doc), (ids.z2m_dev, "temperature", ts)
    if which == 4:
        topic = f"{ids.tele}/{ids.tasmota_dev}/SENSOR"
        local = ts.astimezone(ZoneInfo("Europe/London")).replace(tzinfo=None).isoformat(timespec="seconds")
        return (
            topic,
            _j({"Time": local, "AM2301": {"Temperature": v}, "TempUnit": "C"}),
            (ids.tasmota_dev, "temperature", ts),
        )
    topic = f"{ids.senml}/gw"
    doc = [{"bn": f"{ids.senml_dev}:", "bt": int(ts.timestamp()), "n": "temperature", "u": "Cel", "v": v}]
    return topic, _j(doc), (ids.senml_dev, "temperature", ts)
