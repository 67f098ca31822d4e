"""Each device format, decoded from its project's documented examples (sources: tests/fixtures/formats/README.md)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.model import Decoded, DecodeError
from ingest.decoders.chirpstack import ChirpStackDecoder
from ingest.decoders.codecs import NO_CODEC, dragino_lht65, milesight_em300_th, object_readings
from ingest.decoders.native import NativeDecoder
from ingest.decoders.registry import FormatConfig, all_subscriptions, build_decoders, pick
from ingest.decoders.senml import SenMLDecoder
from ingest.decoders.tasmota import TasmotaDecoder
from ingest.decoders.tts import TTSDecoder
from ingest.decoders.zigbee2mqtt import Zigbee2MQTTDecoder

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "formats"
RECEIVED = datetime(2026, 1, 15, 6, 30, tzinfo=UTC)  # when ingest "received" each message


def load(name: str) -> Any:
    """A fixture as a JSON value, to change before encoding."""
    return orjson.loads((FIXTURES / name).read_bytes())


def raw(name: str) -> bytes:
    """A fixture's bytes exactly as saved."""
    return (FIXTURES / name).read_bytes()


def enc(doc: Any) -> bytes:
    return orjson.dumps(doc)


def values(decoded: Decoded) -> dict[tuple[str, str], tuple[float | str | None, datetime]]:
    """{(device, metric): (value or label, time)} of a decoded message."""
    out: dict[tuple[str, str], tuple[float | str | None, datetime]] = {}
    for r in decoded.readings:
        assert (r.device_id, r.metric) not in out, f"duplicate {r.metric} for {r.device_id}"
        assert r.ts.utcoffset() == timedelta(0)
        out[(r.device_id, r.metric)] = (r.value if r.label is None else r.label, r.ts)
    return out


def rows(decoded: Decoded) -> list[tuple[str, str, float | str | None, datetime]]:
    """(device, metric, value or label, time) of each reading, in time order."""
    return sorted(
        ((r.device_id, r.metric, r.value if r.label is None else r.label, r.ts) for r in decoded.readings),
        key=lambda row: row[3],
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# --- The Things Stack v3 ---------------------------------------------------------------------------

TTS_TOPIC = "v3/app1@tenant1/devices/dev1/up"


def test_tts_documented_uplink_gives_temperature_at_network_server_time_to_the_microsecond() -> None:
    d = TTSDecoder().decode(TTS_TOPIC, raw("tts_uplink.json"), RECEIVED)
    # uplink_message.received_at "2020-02-12T15:15:45.789585559Z": nanoseconds cut to microseconds
    assert values(d) == {("dev1", "temperature"): (1.0, utc(2020, 2, 12, 15, 15, 45, 789585))}
    assert d.device_id == "dev1" and d.format == "tts"


def test_tts_unknown_decoded_payload_keys_are_ignored_not_rejected() -> None:
    d = TTSDecoder().decode(TTS_TOPIC, raw("tts_uplink.json"), RECEIVED)
    assert d.rejections == ()
    assert d.meta["ignored"] == "luminosity"


@pytest.mark.parametrize("topic", ["v3/app1@tenant1/devices/dev1/up", "v3/app1/devices/dev1/up"])
def test_tts_application_id_with_or_without_tenant(topic: str) -> None:
    decoder = TTSDecoder()
    assert decoder.matches(topic)
    assert decoder.decode(topic, raw("tts_uplink.json"), RECEIVED).meta["application"] == "app1"


def test_tts_time_falls_back_to_top_level_received_at_then_to_the_time_received() -> None:
    doc = load("tts_uplink.json")
    del doc["uplink_message"]["received_at"]
    d = TTSDecoder().decode(TTS_TOPIC, enc(doc), RECEIVED)
    assert values(d)[("dev1", "temperature")][1] == utc(2020, 2, 12, 15, 15, 46, 14773)
    del doc["received_at"]
    d = TTSDecoder().decode(TTS_TOPIC, enc(doc), RECEIVED)
    assert values(d)[("dev1", "temperature")][1] == RECEIVED


def test_tts_uplink_without_formatter_or_codec_is_refused_with_the_documented_reason() -> None:
    with pytest.raises(DecodeError) as err:
        TTSDecoder().decode(TTS_TOPIC, raw("tts_uplink_mqtt_no_formatter.json"), RECEIVED)
    assert str(err.value) == NO_CODEC == "no decoded payload and no codec for this device"


def test_tts_uplink_without_formatter_is_decoded_by_the_codec_configured_for_the_device() -> None:
    decoder = TTSDecoder(codecs={"em300-th-kitchen": "milesight-em300-th"})
    topic = "v3/app1/devices/em300-th-kitchen/up"
    d = decoder.decode(topic, raw("tts_uplink_em300th_bytes.json"), RECEIVED)
    at = utc(2020, 2, 12, 15, 15, 45, 789585)
    assert values(d) == {
        ("em300-th-kitchen", "battery"): (92.0, at),
        ("em300-th-kitchen", "temperature"): (30.8, at),
        ("em300-th-kitchen", "relative_humidity"): (50.5, at),
    }
    assert d.meta["codec"] == "milesight-em300-th"


@pytest.mark.parametrize(
    "config",
    [
        {"codecs": {"24E124136B502217": "milesight-em300-th"}},  # by DevEUI, any case
        {"app_codecs": {"app1": "milesight-em300-th"}},  # the application's default
    ],
)
def test_tts_codec_can_be_chosen_by_dev_eui_or_by_application(config: dict[str, Any]) -> None:
    d = TTSDecoder(**config).decode(
        "v3/app1/devices/em300-th-kitchen/up", raw("tts_uplink_em300th_bytes.json"), RECEIVED
    )
    assert {m for _, m in values(d)} == {"battery", "temperature", "relative_humidity"}


def test_tts_codec_for_another_kind_of_device_refuses_the_bytes() -> None:
    decoder = TTSDecoder(codecs={"dev1": "milesight-em300-th"})  # the documented bytes are ASCII text
    with pytest.raises(DecodeError, match=r"not a milesight-em300-th frame: .*unknown channel 0x54"):
        decoder.decode(TTS_TOPIC, raw("tts_uplink_mqtt_no_formatter.json"), RECEIVED)


def test_tts_dragino_formatter_keys_map_to_the_vocabulary_and_the_external_probe_is_ignored() -> None:
    d = TTSDecoder().decode("v3/app1/devices/lht65-bedroom/up", raw("tts_uplink_lht65_decoded.json"), RECEIVED)
    at = utc(2020, 2, 12, 15, 15, 45, 789585)
    assert values(d) == {
        ("lht65-bedroom", "battery_voltage"): (3.062, at),
        ("lht65-bedroom", "temperature"): (28.29, at),
        ("lht65-bedroom", "relative_humidity"): (88.6, at),
    }
    assert "TempC_DS" in d.meta["ignored"]


def test_tts_lht65_bytes_through_the_built_in_codec_match_the_vendor_formatter() -> None:
    topic = "v3/app1/devices/lht65-bedroom/up"
    with_formatter = TTSDecoder().decode(topic, raw("tts_uplink_lht65_decoded.json"), RECEIVED)
    doc = load("tts_uplink_lht65_decoded.json")
    del doc["uplink_message"]["decoded_payload"]
    with_codec = TTSDecoder(codecs={"lht65-bedroom": "dragino-lht65"}).decode(topic, enc(doc), RECEIVED)
    assert values(with_codec) == values(with_formatter)


def test_tts_dragino_numbers_sent_as_strings_are_read() -> None:
    doc = load("tts_uplink.json")
    doc["uplink_message"]["decoded_payload"] = {"BatV": "3.05", "TempC_SHT": "24.53", "Hum_SHT": "61.2"}
    d = TTSDecoder().decode(TTS_TOPIC, enc(doc), RECEIVED)
    assert {m: v for (_, m), (v, _) in values(d).items()} == {
        "battery_voltage": 3.05,
        "temperature": 24.53,
        "relative_humidity": 61.2,
    }


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"battery": 92}, {"battery": 92.0}),  # Milesight: percent
        ({"battery": 3.6}, {"battery_voltage": 3.6}),  # RAK-style: volts
        ({"battery": 3600}, {"battery_voltage": 3.6}),  # millivolts
        ({"vdd": 3012}, {"battery_voltage": 3.012}),  # Elsys: millivolts
        ({"battery_v": 3.62, "temperature_c": 29.9, "humidity_pct": 29.6}, None),
        ({"temperature_f": 50.0}, {"temperature": 10.0}),
        ({"temperature_1": 21.5, "relative_humidity_2": 40.5}, {"temperature": 21.5, "relative_humidity": 40.5}),
    ],
)
def test_tts_vendor_battery_and_unit_conventions(payload: dict[str, Any], expected: dict[str, float] | None) -> None:
    doc = load("tts_uplink.json")
    doc["uplink_message"]["decoded_payload"] = payload
    got = {m: v for (_, m), (v, _) in values(TTSDecoder().decode(TTS_TOPIC, enc(doc), RECEIVED)).items()}
    if expected is None:
        expected = {"battery_voltage": 3.62, "temperature": 29.9, "relative_humidity": 29.6}
    assert got == pytest.approx(expected)


def test_tts_out_of_range_value_is_rejected_and_the_rest_kept() -> None:
    doc = load("tts_uplink.json")
    doc["uplink_message"]["decoded_payload"] = {"TempC_SHT": 327.67, "Hum_SHT": 55.0}  # SHT sensor missing
    d = TTSDecoder().decode(TTS_TOPIC, enc(doc), RECEIVED)
    assert list(values(d)) == [("dev1", "relative_humidity")]
    assert d.rejections == ("TempC_SHT: temperature 327.67 degC is outside the physical range -40 to 80 degC",)


def test_tts_decoded_payload_with_nothing_usable_is_refused_naming_its_keys() -> None:
    doc = load("tts_uplink.json")
    doc["uplink_message"]["decoded_payload"] = {"luminosity": 0.64, "counter": 7}
    with pytest.raises(DecodeError, match=r"decoded payload has no value .*luminosity, counter"):
        TTSDecoder().decode(TTS_TOPIC, enc(doc), RECEIVED)


def test_tts_payload_naming_another_device_than_the_topic_is_refused() -> None:
    with pytest.raises(DecodeError, match="names device 'dev1' but the topic names 'dev2'"):
        TTSDecoder().decode("v3/app1/devices/dev2/up", raw("tts_uplink.json"), RECEIVED)


def test_tts_other_events_are_ignored() -> None:
    decoder = TTSDecoder(topics=["v3/+/devices/+/#"])
    d = decoder.decode("v3/app1/devices/dev1/join", b'{"end_device_ids": {"device_id": "dev1"}}', RECEIVED)
    assert d.readings == () and d.device_id is None and d.rejections == ()


def test_tts_unreadable_time_is_refused() -> None:
    doc = load("tts_uplink.json")
    doc["uplink_message"]["received_at"] = "12 Feb 2020"
    with pytest.raises(DecodeError, match=r"uplink_message\.received_at"):
        TTSDecoder().decode(TTS_TOPIC, enc(doc), RECEIVED)


# --- ChirpStack v4 ---------------------------------------------------------------------------------

CS_APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
CS_UP = f"application/{CS_APP}/device/0101010101010101/event/up"
LHT_UP = f"application/{CS_APP}/device/a84041000181c61d/event/up"


def test_chirpstack_documented_up_without_codec_is_refused_with_the_documented_reason() -> None:
    with pytest.raises(DecodeError) as err:
        ChirpStackDecoder().decode(CS_UP, raw("chirpstack_up.json"), RECEIVED)
    assert str(err.value) == "no decoded payload and no codec for this device"


def test_chirpstack_object_is_read_at_its_plus_zero_offset_time_under_the_lower_case_dev_eui() -> None:
    d = ChirpStackDecoder().decode(LHT_UP, raw("chirpstack_up_lht65_object.json"), RECEIVED)
    at = utc(2022, 7, 18, 9, 34, 15, 775023)  # "2022-07-18T09:34:15.775023242+00:00"
    assert values(d) == {
        ("a84041000181c61d", "battery_voltage"): (3.062, at),
        ("a84041000181c61d", "temperature"): (28.29, at),
        ("a84041000181c61d", "relative_humidity"): (88.6, at),
    }
    assert d.meta["device_name"] == "LHT65 bedroom" and d.format == "chirpstack"


def test_chirpstack_upper_case_dev_eui_in_the_payload_is_the_same_device() -> None:
    doc = load("chirpstack_up_lht65_object.json")
    doc["deviceInfo"]["devEui"] = "A84041000181C61D"
    assert ChirpStackDecoder().decode(LHT_UP, enc(doc), RECEIVED).device_id == "a84041000181c61d"


def test_chirpstack_without_time_uses_the_time_received() -> None:
    doc = load("chirpstack_up_lht65_object.json")
    del doc["time"]
    d = ChirpStackDecoder().decode(LHT_UP, enc(doc), RECEIVED)
    assert {ts for _, ts in values(d).values()} == {RECEIVED}


def test_chirpstack_bytes_are_decoded_by_the_application_codec_when_there_is_no_object() -> None:
    with_object = ChirpStackDecoder().decode(LHT_UP, raw("chirpstack_up_lht65_object.json"), RECEIVED)
    doc = load("chirpstack_up_lht65_object.json")
    del doc["object"]
    decoder = ChirpStackDecoder(app_codecs={CS_APP: "dragino-lht65"})
    assert values(decoder.decode(LHT_UP, enc(doc), RECEIVED)) == values(with_object)


def test_chirpstack_cayenne_lpp_channel_objects_are_read() -> None:
    doc = load("chirpstack_up.json")  # object shaped as in the ChirpStack MQTT docs: {"temperatureSensor": {"1": 25}}
    doc["object"] = {"temperatureSensor": {"1": 25}, "humiditySensor": {"1": 32}}
    d = ChirpStackDecoder().decode(CS_UP, enc(doc), RECEIVED)
    assert {m: v for (_, m), (v, _) in values(d).items()} == {"temperature": 25.0, "relative_humidity": 32.0}


def test_chirpstack_status_event_gives_battery_percent() -> None:
    topic = f"application/{CS_APP}/device/0101010101010101/event/status"
    d = ChirpStackDecoder().decode(topic, raw("chirpstack_status.json"), RECEIVED)
    assert values(d) == {("0101010101010101", "battery"): (88.3, utc(2022, 7, 18, 9, 35, 6, 927172))}


def test_chirpstack_status_on_external_power_stores_no_battery() -> None:
    topic = f"application/{CS_APP}/device/0101010101010101/event/status"
    doc = load("chirpstack_status.json")
    del doc["batteryLevel"]
    doc["externalPowerSource"] = True
    d = ChirpStackDecoder().decode(topic, enc(doc), RECEIVED)
    assert d.readings == () and d.rejections == () and d.device_id == "0101010101010101"


def test_chirpstack_other_events_are_ignored() -> None:
    decoder = ChirpStackDecoder(topics=["application/+/device/+/event/+"])
    d = decoder.decode(f"application/{CS_APP}/device/0101010101010101/event/join", b"{}", RECEIVED)
    assert d.readings == () and d.device_id is None


def test_chirpstack_payload_naming_another_device_than_the_topic_is_refused() -> None:
    with pytest.raises(DecodeError, match="names device '0101010101010101'"):
        ChirpStackDecoder().decode(LHT_UP, raw("chirpstack_up.json"), RECEIVED)


# --- built-in codecs -------------------------------------------------------------------------------


def test_milesight_codec_matches_the_vendor_readme_example() -> None:
    # Milesight-IoT/SensorDecoders EM300-TH README: 01755C 03673401 046865
    assert milesight_em300_th(bytes.fromhex("01755C03673401046865"), 85) == (
        {"battery": 92, "temperature": 30.8, "humidity": 50.5},
        [],
    )


def test_milesight_history_points_are_read_at_their_own_time() -> None:
    # README history example 20CE9E74466310015D00 -> timestamp 1665561758, temperature 27.2, humidity 46.5
    fields, problems = milesight_em300_th(bytes.fromhex("20CE9E74466310015D00"), 85)
    assert fields == {"history": [{"timestamp": 1665561758, "temperature": 27.2, "humidity": 46.5}]}
    rejections: list[str] = []
    readings, _ = object_readings("em", fields, RECEIVED, rejections)
    at = utc(2022, 10, 12, 8, 2, 38)
    assert {(r.metric, r.value, r.ts) for r in readings} == {("temperature", 27.2, at), ("relative_humidity", 46.5, at)}
    assert problems == [] and rejections == []


def test_milesight_negative_temperature_is_signed_little_endian() -> None:
    assert milesight_em300_th(bytes.fromhex("0367CCFF"), 85)[0] == {"temperature": -5.2}


def test_milesight_device_information_frame_carries_no_measurement_and_is_not_an_error() -> None:
    # FF channels (decoder: ipso version, hardware/firmware version, power on, serial number, class)
    frame = bytes.fromhex("FF0BFF FF0101 FF166136C39285560000 FF090130 FF0A0114 FF0F00")
    assert milesight_em300_th(frame, 85) == ({}, [])
    doc = load("tts_uplink_em300th_bytes.json")
    doc["uplink_message"]["frm_payload"] = base64.b64encode(frame).decode()
    d = TTSDecoder(codecs={"em300-th-kitchen": "milesight-em300-th"}).decode(
        "v3/app1/devices/em300-th-kitchen/up", enc(doc), RECEIVED
    )
    assert d.readings == () and d.rejections == () and "no measurements" in d.meta["note"]


def test_milesight_frame_cut_short_keeps_what_came_before() -> None:
    fields, problems = milesight_em300_th(bytes.fromhex("01755C0367"), 85)
    assert fields == {"battery": 92}
    assert problems == ["Milesight EM300-TH: channel 0x03 at byte 3 is cut short"]


def test_lht65_codec_matches_the_ttn_device_repository_example() -> None:
    # TheThingsNetwork/lorawan-devices vendor/dragino/lht65-codec.yaml
    fields, problems = dragino_lht65(bytes.fromhex("CBF60B0D0376010ADD7FFF"), 2)
    assert fields == {
        "BatV": 3.062,
        "Bat_status": 3,
        "Ext_sensor": "Temperature Sensor",
        "Hum_SHT": 88.6,
        "TempC_DS": 27.81,
        "TempC_SHT": 28.29,
    }
    assert problems == []


def test_lht65_codec_refuses_other_ports_as_the_vendor_codec_does() -> None:
    with pytest.raises(DecodeError, match="unknown fPort 42"):
        dragino_lht65(bytes.fromhex("CBF60B0D0376010ADD7FFF"), 42)


def test_lht65_codec_reads_sub_zero_temperatures_and_refuses_short_frames() -> None:
    assert dragino_lht65(bytes.fromhex("CBF6FF380376000000FFFF"), 2)[0]["TempC_SHT"] == -2.0
    with pytest.raises(DecodeError, match="frame is 4 bytes"):
        dragino_lht65(bytes.fromhex("CBF60B0D"), 2)


# --- Zigbee2MQTT -----------------------------------------------------------------------------------


def test_z2m_documented_sensor_under_a_friendly_name_with_slashes() -> None:
    d = Zigbee2MQTTDecoder().decode("zigbee2mqtt/flat 12/kitchen", raw("zigbee2mqtt_wsdcgq01lm.json"), RECEIVED)
    assert values(d) == {
        ("flat 12/kitchen", "temperature"): (27.34, RECEIVED),
        ("flat 12/kitchen", "relative_humidity"): (44.72, RECEIVED),
    }


def test_z2m_battery_percent_and_voltage_millivolts_stay_separate_at_last_seen() -> None:
    d = Zigbee2MQTTDecoder().decode("zigbee2mqtt/bedroom", raw("zigbee2mqtt_wsdcgq11lm.json"), RECEIVED)
    at = utc(2024, 1, 15, 6, 30)
    assert values(d) == {
        ("bedroom", "battery"): (91.0, at),
        ("bedroom", "battery_voltage"): (2.995, at),
        ("bedroom", "temperature"): (19.52, at),
        ("bedroom", "relative_humidity"): (63.1, at),
        ("bedroom", "pressure"): (1008.2, at),
    }


@pytest.mark.parametrize("last_seen", [1705300200000, "2024-01-15T07:30:00.000+01:00"])
def test_z2m_last_seen_as_epoch_milliseconds_or_local_iso(last_seen: object) -> None:
    doc = {"temperature": 20.5, "last_seen": last_seen}
    d = Zigbee2MQTTDecoder().decode("zigbee2mqtt/hall", enc(doc), RECEIVED)
    assert values(d) == {("hall", "temperature"): (20.5, utc(2024, 1, 15, 6, 30))}


def test_z2m_legacy_battery_string_is_read() -> None:
    d = Zigbee2MQTTDecoder().decode("zigbee2mqtt/leak", raw("zigbee2mqtt_legacy_water_leak.json"), RECEIVED)
    assert values(d) == {("leak", "battery"): (100.0, RECEIVED), ("leak", "battery_voltage"): (3.045, RECEIVED)}


def test_z2m_message_of_nulls_stores_nothing_and_is_not_an_error() -> None:
    doc = {"battery": None, "humidity": None, "linkquality": None, "temperature": None, "voltage": None}
    d = Zigbee2MQTTDecoder().decode("zigbee2mqtt/bathroom", enc(doc), RECEIVED)
    assert d.readings == () and d.rejections == () and d.device_id == "bathroom"


def test_z2m_light_state_is_ignored_without_naming_a_device() -> None:
    d = Zigbee2MQTTDecoder().decode(
        "zigbee2mqtt/lamp", b'{"state": "ON", "brightness": 215, "color_temp": 325}', RECEIVED
    )
    assert d.readings == () and d.rejections == () and d.device_id is None


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"online", "online"),
        (b"offline", "offline"),
        (b'{"state":"online"}', "online"),
        (b'{"state":"offline"}', "offline"),
    ],
)
def test_z2m_availability_legacy_and_json(payload: bytes, status: str) -> None:
    d = Zigbee2MQTTDecoder().decode("zigbee2mqtt/flat 12/kitchen/availability", payload, RECEIVED)
    assert [(s.device_id, s.status, s.ts) for s in d.status] == [("flat 12/kitchen", status, RECEIVED)]


def test_z2m_cleared_retained_availability_changes_nothing() -> None:
    d = Zigbee2MQTTDecoder().decode("zigbee2mqtt/kitchen/availability", b"", RECEIVED)
    assert d.status == () and d.readings == ()


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("zigbee2mqtt/bridge/state", b"online"),
        ("zigbee2mqtt/bridge/state", b'{"state":"online"}'),
        ("zigbee2mqtt/bridge/logging", b'{"level": "info", "message": "Zigbee: allowing new devices to join."}'),
        ("zigbee2mqtt/bridge/event", b'{"type":"device_joined","data":{"friendly_name":"0x90fd9ffffe6494fc"}}'),
        ("zigbee2mqtt/my_bulb/set", b'{"state": "ON", "brightness": 255}'),
        ("zigbee2mqtt/my_bulb/set/state", b"ON"),
        ("zigbee2mqtt/my_bulb/get", b'{"state": ""}'),
    ],
)
def test_z2m_bridge_and_command_topics_are_ignored(topic: str, payload: bytes) -> None:
    d = Zigbee2MQTTDecoder().decode(topic, payload, RECEIVED)
    assert d.readings == () and d.status == () and d.rejections == () and d.device_id is None


def test_z2m_impossible_value_is_rejected_and_the_rest_kept() -> None:
    d = Zigbee2MQTTDecoder().decode("zigbee2mqtt/attic", b'{"temperature": 21.0, "humidity": 180}', RECEIVED)
    assert list(values(d)) == [("attic", "temperature")]
    assert d.rejections == ("relative_humidity 180 % is outside the physical range 0 to 100 %",)


def test_z2m_custom_base_topic() -> None:
    decoder = Zigbee2MQTTDecoder(base_topic="z2m/block-a")
    assert decoder.subscriptions() == ["z2m/block-a/#"]
    assert decoder.decode("z2m/block-a/hall", b'{"temperature": 19}', RECEIVED).device_id == "hall"


# --- Tasmota ---------------------------------------------------------------------------------------


def test_tasmota_documented_bme280_time_is_london_wall_time() -> None:
    d = TasmotaDecoder().decode("tele/tasmota_ABC123/SENSOR", raw("tasmota_bme280.json"), RECEIVED)
    at = utc(2019, 11, 3, 19, 34, 28)  # GMT in November
    assert values(d) == {
        ("tasmota_ABC123", "temperature"): (21.7, at),
        ("tasmota_ABC123", "relative_humidity"): (66.6, at),
        ("tasmota_ABC123", "pressure"): (988.6, at),
    }


def test_tasmota_summer_time_is_an_hour_ahead_of_utc_and_the_zone_is_configurable() -> None:
    doc = load("tasmota_am2301.json")
    doc["Time"] = "2019-07-01T12:00:00"
    london = TasmotaDecoder().decode("tele/th/SENSOR", enc(doc), RECEIVED)
    assert {ts for _, ts in values(london).values()} == {utc(2019, 7, 1, 11)}
    dublin_winter = TasmotaDecoder(zone="Europe/Dublin").decode("tele/th/SENSOR", raw("tasmota_am2301.json"), RECEIVED)
    assert {ts for _, ts in values(dublin_winter).values()} == {utc(2019, 1, 1)}


def test_tasmota_fahrenheit_is_converted() -> None:
    doc = load("tasmota_ds18b20.json")
    doc["DS18B20"]["Temperature"] = 70.7
    doc["TempUnit"] = "F"
    d = TasmotaDecoder().decode("tele/probe/SENSOR", enc(doc), RECEIVED)
    assert values(d)[("probe", "temperature")][0] == pytest.approx(21.5)


def test_tasmota_several_sensors_first_wins_and_meta_says_which() -> None:
    d = TasmotaDecoder().decode("tele/lounge/SENSOR", raw("tasmota_multi.json"), RECEIVED)
    assert {m: v for (_, m), (v, _) in values(d).items()} == {
        "temperature": 24.6,
        "relative_humidity": 58.2,
        "pressure": 988.6,
    }
    assert d.meta["sensors"] == "temperature=AM2301, relative_humidity=AM2301, pressure=BME280"
    assert d.meta["not_used"] == "BME280.Temperature, BME280.Humidity"


def test_tasmota_esp32_chip_temperature_is_never_a_room_temperature() -> None:
    d = TasmotaDecoder().decode("tele/plug/SENSOR", raw("tasmota_esp32_chip.json"), RECEIVED)
    assert d.readings == () and d.rejections == () and d.device_id is None


def test_tasmota_dew_point_is_kept() -> None:
    doc = {
        "Time": "2024-01-15T06:30:00",
        "SHT3X": {"Temperature": 20.0, "Humidity": 60.0, "DewPoint": 12.0},
        "TempUnit": "C",
    }
    d = TasmotaDecoder().decode("tele/bathroom/SENSOR", enc(doc), RECEIVED)
    assert values(d)[("bathroom", "dew_point")] == (12.0, utc(2024, 1, 15, 6, 30))


def test_tasmota_unset_clock_gets_the_time_received() -> None:
    doc = load("tasmota_am2301.json")
    doc["Time"] = "1970-01-01T00:05:12"
    d = TasmotaDecoder().decode("tele/th/SENSOR", enc(doc), RECEIVED)
    assert {ts for _, ts in values(d).values()} == {RECEIVED}
    assert "clock not set" in d.meta["time"]


@pytest.mark.parametrize(("payload", "status"), [(b"Online", "online"), (b"Offline", "offline")])
def test_tasmota_lwt(payload: bytes, status: str) -> None:
    d = TasmotaDecoder().decode("tele/tasmota_ABC123/LWT", payload, RECEIVED)
    assert [(s.device_id, s.status) for s in d.status] == [("tasmota_ABC123", status)]


def test_tasmota_state_telemetry_is_ignored() -> None:
    d = TasmotaDecoder().decode("tele/th/STATE", b'{"Time":"2019-01-01T00:00:00","Uptime":"0T00:05:00"}', RECEIVED)
    assert d.readings == () and d.device_id is None


def test_tasmota_topic_with_levels_is_the_device_id() -> None:
    d = TasmotaDecoder().decode("tele/block-a/flat-12/SENSOR", raw("tasmota_am2301.json"), RECEIVED)
    assert d.device_id == "block-a/flat-12"


# --- SenML (RFC 8428) ------------------------------------------------------------------------------

URN = "urn:dev:ow:10e2073a01080063"


def senml(name: str, topic: str = "senml/gateway-1") -> Decoded:
    return SenMLDecoder().decode(topic, raw(name), RECEIVED)


def test_senml_single_datapoint_without_time_is_now() -> None:
    assert values(senml("senml_single_datapoint.json")) == {(URN, "temperature"): (23.1, RECEIVED)}


def test_senml_multiple_measurements_and_their_resolved_form_give_the_same_readings() -> None:
    packed = senml("senml_multiple_measurements.json")
    assert rows(packed) == rows(senml("senml_resolved.json"))
    t0 = utc(2011, 10, 31, 13, 24, 24)  # bt 1.320067464e+09; lat and lon are not ours
    assert rows(packed) == [
        (URN, "relative_humidity", 20.0, t0),
        (URN, "relative_humidity", 20.3, t0 + timedelta(seconds=60)),
        (URN, "relative_humidity", 20.7, t0 + timedelta(seconds=120)),
        (URN, "battery", 98.0, t0 + timedelta(seconds=150)),
        (URN, "relative_humidity", 21.2, t0 + timedelta(seconds=180)),
    ]


def test_senml_mains_voltage_is_not_a_battery_voltage_and_current_is_ignored() -> None:
    d = senml("senml_multiple_datapoints.json")
    assert d.readings == () and d.device_id == URN
    assert d.rejections == ("record 0: battery_voltage 120.1 V is outside the physical range 0 to 60 V",)


def test_senml_base_time_and_base_unit_carry_forward() -> None:
    d = senml("senml_multiple_datapoints_time.json")
    assert d.device_id == "urn:dev:ow:10e2073a0108006" and d.readings == ()  # all current (bu A), voltage 120.1 V


def test_senml_string_boolean_and_data_values_are_skipped() -> None:
    assert values(senml("senml_multiple_datatypes.json")) == {(URN, "temperature"): (23.1, RECEIVED)}


def test_senml_pack_naming_two_devices_gives_each_its_own_readings() -> None:
    d = senml("senml_collection_of_resources.json")
    at = utc(2011, 10, 31, 16, 27, 9)  # base time of the first record carries to the last
    assert d.device_id == "2001:db8::2"
    assert values(d) == {
        ("2001:db8::2", "temperature"): (25.2, at),
        ("2001:db8::2", "relative_humidity"): (30.0, at),
        ("2001:db8::1", "temperature"): (12.3, at),
        ("2001:db8::1", "relative_humidity"): (67.0, at),
    }


def test_senml_base_name_only_record_then_actuator_ratios_ignored() -> None:
    assert values(senml("senml_setting_actuator.json")) == {(URN, "temperature"): (23.1, RECEIVED)}


def test_senml_times_below_2_pow_28_are_relative_to_now() -> None:
    pack = [{"bn": "flat-12/", "bt": -120, "n": "temp", "u": "Cel", "v": 19.0}, {"n": "temp", "t": 60, "v": 19.5}]
    d = SenMLDecoder().decode("senml/x", enc(pack), RECEIVED)
    assert sorted((r.ts, r.value) for r in d.readings) == [
        (RECEIVED - timedelta(seconds=120), 19.0),
        (RECEIVED - timedelta(seconds=60), 19.5),
    ]


def test_senml_base_value_and_ratio_humidity() -> None:
    pack = [{"bn": "flat-12:", "bv": 0.5, "n": "humidity", "u": "/", "v": 0.05}]
    d = SenMLDecoder().decode("senml/x", enc(pack), RECEIVED)
    assert values(d)[("flat-12", "relative_humidity")][0] == pytest.approx(55.0)


def test_senml_bare_name_takes_the_device_from_the_topic() -> None:
    d = SenMLDecoder().decode("senml/hall-sensor", b'[{"n":"temp","u":"Cel","v":19.5}]', RECEIVED)
    assert values(d) == {("hall-sensor", "temperature"): (19.5, RECEIVED)}


def test_senml_cpu_temperature_under_an_unknown_name_is_not_stored() -> None:
    with pytest.raises(DecodeError, match="no record Placewatch can use"):
        SenMLDecoder().decode("senml/x", b'[{"bn":"gw-1/","n":"cpu","u":"Cel","v":55}]', RECEIVED)


def test_senml_road_station_metrics_and_surface_state_by_name() -> None:
    pack = [
        {
            "bn": "urn:dev:mac:0024befffe804ff1:",
            "bt": 1768458600,
            "n": "road_surface_temperature",
            "u": "Cel",
            "v": -1.2,
        },
        {"n": "surface_state", "vs": "Wet"},
    ]
    d = SenMLDecoder().decode("senml/x", enc(pack), RECEIVED)
    assert values(d) == {
        ("urn:dev:mac:0024befffe804ff1", "road_surface_temperature"): (-1.2, utc(2026, 1, 15, 6, 30)),
        ("urn:dev:mac:0024befffe804ff1", "surface_state"): ("wet", utc(2026, 1, 15, 6, 30)),
    }


def test_senml_bad_record_is_rejected_and_the_rest_kept() -> None:
    pack = [{"bn": "flat-12/", "n": "temp", "u": "Cel", "v": "warm"}, {"n": "humidity", "u": "%RH", "v": 50}]
    d = SenMLDecoder().decode("senml/x", enc(pack), RECEIVED)
    assert list(values(d)) == [("flat-12", "relative_humidity")]
    assert d.rejections == ("record 0: v must be a number, not a string",)


def test_senml_must_understand_field_refuses_the_pack() -> None:
    with pytest.raises(DecodeError, match="must be understood"):
        SenMLDecoder().decode("senml/x", b'[{"n":"d:temp","u":"Cel","v":20,"lim_":1}]', RECEIVED)


@pytest.mark.parametrize("payload", [b'{"n":"d:temp","v":1}', b"[]"])
def test_senml_pack_must_be_a_non_empty_array(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        SenMLDecoder().decode("senml/x", payload, RECEIVED)


# --- registry --------------------------------------------------------------------------------------

ALL = "native,tts,chirpstack,zigbee2mqtt,tasmota,senml"


def test_registry_default_is_the_native_decoder_alone() -> None:
    decoders = build_decoders({})
    assert [d.name for d in decoders] == ["native"]
    assert all_subscriptions(decoders) == ["placewatch/v1/devices/#"]


def test_registry_native_comes_first_when_enabled() -> None:
    decoders = build_decoders({"formats": "senml,tasmota,native,zigbee2mqtt,chirpstack,tts"})
    assert [d.name for d in decoders] == ["native", "senml", "tasmota", "zigbee2mqtt", "chirpstack", "tts"]


def test_registry_leaves_native_out_for_a_network_servers_own_broker() -> None:
    decoders = build_decoders({"formats": "tts"})
    assert [d.name for d in decoders] == ["tts"]
    assert all_subscriptions(decoders) == ["v3/+/devices/+/up"]


def test_registry_subscribes_each_format_once() -> None:
    decoders = build_decoders({"formats": ALL})
    assert all_subscriptions(decoders) == [
        "placewatch/v1/devices/#",
        "v3/+/devices/+/up",
        "application/+/device/+/event/up",
        "application/+/device/+/event/status",
        "zigbee2mqtt/#",
        "tele/#",
        "senml/#",
    ]


@pytest.mark.parametrize(
    ("topic", "name"),
    [
        ("placewatch/v1/devices/rs-1/readings", "native"),
        ("v3/app1@ttn/devices/dev1/up", "tts"),
        ("application/17c82e96/device/0101010101010101/event/up", "chirpstack"),
        ("zigbee2mqtt/kitchen/sensor", "zigbee2mqtt"),
        ("tele/tasmota_1/SENSOR", "tasmota"),
        ("senml/gw-1", "senml"),
    ],
)
def test_registry_picks_the_decoder_that_owns_the_topic(topic: str, name: str) -> None:
    decoder = pick(build_decoders({"formats": ALL}), topic)
    assert decoder is not None and decoder.name == name


def test_registry_picks_nothing_for_a_foreign_topic() -> None:
    assert pick(build_decoders({"formats": ALL}), "homeassistant/status") is None


def test_registry_options_as_flat_values_or_json_strings() -> None:
    config = {
        "formats": ["native", "tts", "chirpstack", "tasmota", "senml", "zigbee2mqtt"],
        "native": {"prefix": "pw/v1"},
        "tts": '{"topics": "v3/homes@council/devices/+/up", "codecs": "em300-th-kitchen=milesight-em300-th"}',
        "chirpstack": {"app_codecs": {"homes": "dragino-lht65"}},
        "tasmota": {"prefix": "telemetry", "zone": "Europe/London"},
        "senml": {"topics": ["senml/a/#", "senml/b/#"]},
        "zigbee2mqtt": None,
    }
    decoders = build_decoders(config)
    assert all_subscriptions(decoders)[:2] == ["pw/v1/devices/#", "v3/homes@council/devices/+/up"]
    assert "telemetry/#" in all_subscriptions(decoders) and "senml/b/#" in all_subscriptions(decoders)
    tts = pick(decoders, "v3/homes@council/devices/em300-th-kitchen/up")
    assert tts is not None
    d = tts.decode("v3/homes@council/devices/em300-th-kitchen/up", raw("tts_uplink_em300th_bytes.json"), RECEIVED)
    assert d.meta["codec"] == "milesight-em300-th"


def test_registry_takes_each_enabled_format_with_its_options() -> None:
    decoders = build_decoders({"native": {"prefix": "placewatch/v1"}, "tts": {}, "zigbee2mqtt": None})
    assert [d.name for d in decoders] == ["native", "tts", "zigbee2mqtt"]


def test_registry_builds_the_formats_named_in_settings() -> None:
    from placewatch.cli import build_decoders as from_settings
    from placewatch.settings import Settings

    settings = Settings(
        formats="native,tts,chirpstack,zigbee2mqtt,tasmota,senml",
        format_options={"tts": {"app_codecs": "app1=milesight-em300-th"}, "tasmota": {"zone": "Europe/London"}},
        topic_prefix="placewatch/v1",
    )
    decoders = from_settings(settings)
    assert [d.name for d in decoders] == ["native", "tts", "chirpstack", "zigbee2mqtt", "tasmota", "senml"]
    tts = pick(decoders, "v3/app1/devices/em300-th-kitchen/up")
    assert tts is not None
    d = tts.decode("v3/app1/devices/em300-th-kitchen/up", raw("tts_uplink_em300th_bytes.json"), RECEIVED)
    assert d.meta["codec"] == "milesight-em300-th"


def test_registry_accepts_a_checked_format_config() -> None:
    fc = FormatConfig.from_mapping({"formats": "tts,native", "tts": {"codecs": {"a": "dragino-lht65"}}})
    assert fc.formats == ("native", "tts")
    assert isinstance(build_decoders(fc)[0], NativeDecoder)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"formats": "native,lorawan"}, "unknown format(s) lorawan"),
        ({"formats": "tts", "tts": {"topic": "v3/#"}}, "unknown option(s) topic for tts"),
        ({"formats": "tts", "tts": {"codecs": "dev1=em300"}}, "codec 'em300' for device 'dev1' is not one of"),
        ({"formats": "tts", "tts": {"codecs": "dev1"}}, "'dev1' is not key=codec"),
        ({"formats": "native", "tasmota": {"zone": "Europe/London"}}, "tasmota, which is not enabled"),
        ({"formats": "tasmota", "tasmota": {"zone": "Europe/Londres"}}, "not a known time zone"),
        ({"formats": "senml", "senml": "{not json"}, "not valid JSON"),
        ({"formats": "native", "mqtt": {}}, "unknown configuration key 'mqtt'"),
    ],
)
def test_registry_refuses_bad_configuration_naming_the_problem(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_decoders(config)
