"""Every device format's documented payloads through the real broker, ingest and API, by configuration alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from ingest.decoders.registry import build_decoders, pick
from tests.conftest import wait_until
from tests.helpers import home, load, sensor

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
CS_APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
OPTIONS = {
    "tts": {"codecs": "em300-th-kitchen=milesight-em300-th"},
    "chirpstack": {},
    "zigbee2mqtt": {},
    "tasmota": {},
    "senml": {},
}
# (topic, fixture) as each kind of device publishes it.
MESSAGES = [
    ("v3/homes@council/devices/em300-th-kitchen/up", "tts_uplink_em300th_bytes.json"),
    ("v3/homes/devices/lht65-bedroom/up", "tts_uplink_lht65_decoded.json"),
    (f"application/{CS_APP}/device/a84041000181c61d/event/up", "chirpstack_up_lht65_object.json"),
    ("zigbee2mqtt/flat 12/kitchen", "zigbee2mqtt_wsdcgq01lm.json"),
    ("zigbee2mqtt/bedroom", "zigbee2mqtt_wsdcgq11lm.json"),
    ("tele/tasmota_ABC123/SENSOR", "tasmota_bme280.json"),
    ("tele/th-am2301/SENSOR", "tasmota_am2301.json"),
    ("senml/gateway-1", "senml_multiple_measurements.json"),
    ("senml/gateway-2", "senml_collection_of_resources.json"),  # two devices in one pack
]


def test_each_format_is_normalised_into_readings_visible_through_the_api(
    database_url, ingest, publisher, api_url, token_for, uid
):
    decoders = build_decoders({"native": {}, **OPTIONS})
    received = datetime.now(UTC)
    expected: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for topic, name in MESSAGES:
        decoded = pick(decoders, topic).decode(topic, (FIXTURES / name).read_bytes(), received)
        for r in decoded.readings:
            expected.setdefault((r.device_id, r.metric), []).append((r.ts.isoformat().replace("+00:00", "Z"), r.value))
    devices = sorted({d for d, _ in expected})
    assert devices == sorted(
        [
            "em300-th-kitchen",
            "lht65-bedroom",
            "a84041000181c61d",
            "flat 12/kitchen",
            "bedroom",
            "tasmota_ABC123",
            "th-am2301",
            "urn:dev:ow:10e2073a01080063",
            "2001:db8::1",
            "2001:db8::2",
        ]
    )
    hid = f"fmt-{uid}"
    load(database_url, home(hid), *[sensor(d, hid) for d in devices])
    ingest(
        PLACEWATCH_FORMATS="native,tts,chirpstack,zigbee2mqtt,tasmota,senml",
        PLACEWATCH_FORMAT_OPTIONS=json.dumps(OPTIONS),
    )
    for topic, name in MESSAGES:
        publisher.publish(topic, (FIXTURES / name).read_bytes())
    headers = token_for("admin")

    def points(dev: str, metric: str) -> list[tuple[str, float]]:
        r = httpx.get(
            f"{api_url}/api/v1/devices/{quote(dev, safe='')}/readings",
            headers=headers,
            params={"metric": metric, "start": "2000-01-01T00:00:00Z"},
        )
        return [(p["ts"], p["value"]) for p in r.json().get("points", [])] if r.status_code == 200 else []

    stamp = received.isoformat().replace("+00:00", "Z")
    for (dev, metric), want in sorted(expected.items()):
        got = wait_until(lambda d=dev, m=metric: points(d, m), timeout=20)
        if all(ts == stamp for ts, _ in want):  # no time in the message: stored at the time ingest received it
            assert sorted(v for _, v in got) == sorted(v for _, v in want), (dev, metric)
            assert all(ts >= stamp for ts, _ in got), (dev, metric)
        else:
            assert sorted(got) == sorted(want), (dev, metric)
    # The values the vendors document, as a person would read them.
    assert points("em300-th-kitchen", "temperature") and points("em300-th-kitchen", "temperature")[0][1] == 30.8
    assert points("em300-th-kitchen", "relative_humidity")[0][1] == 50.5
    assert points("em300-th-kitchen", "battery")[0][1] == 92


def test_zigbee_availability_and_tasmota_lwt_set_device_status(
    database_url, ingest, publisher, api_url, token_for, uid
):
    z, t = f"z-{uid}", f"t-{uid}"
    hid = f"st-{uid}"
    load(database_url, home(hid), sensor(z, hid), sensor(t, hid))
    ingest(PLACEWATCH_FORMATS="native,zigbee2mqtt,tasmota")
    publisher.publish(f"zigbee2mqtt/{z}/availability", b'{"state":"offline"}')
    publisher.publish(f"tele/{t}/LWT", b"Offline")
    headers = token_for("admin")

    def status(dev: str) -> str:
        return httpx.get(f"{api_url}/api/v1/devices/{quote(dev, safe='')}", headers=headers).json()["status"]

    wait_until(lambda: status(z) == "offline" and status(t) == "offline")


def test_a_lorawan_uplink_without_payload_or_codec_is_dead_lettered_with_the_reason(
    database_url, db, ingest, publisher, uid
):
    ingest(PLACEWATCH_FORMATS="native,tts")
    topic = f"v3/app-{uid}/devices/dev-{uid}/up"
    doc = json.loads((FIXTURES / "tts_uplink_mqtt_no_formatter.json").read_text())
    doc["end_device_ids"]["device_id"] = f"dev-{uid}"
    publisher.publish(topic, json.dumps(doc))
    reason = wait_until(lambda: db.execute("SELECT reason FROM dead_letters WHERE topic = %s", (topic,)).fetchone())[0]
    assert reason == "no decoded payload and no codec for this device"


def test_unknown_devices_are_quarantined_unless_auto_registration_allows_their_topic(
    database_url, db, ingest, publisher, api_url, token_for, uid
):
    ingest(
        PLACEWATCH_FORMATS="native,zigbee2mqtt",
        PLACEWATCH_AUTO_REGISTER="true",
        PLACEWATCH_AUTO_REGISTER_TOPICS=f"zigbee2mqtt/auto-{uid}/#",
    )
    publisher.publish(f"zigbee2mqtt/auto-{uid}/hall", b'{"temperature": 19.5, "humidity": 55}')
    publisher.publish(f"zigbee2mqtt/stray-{uid}", b'{"temperature": 19.5, "humidity": 55}')
    headers = token_for("admin")
    wait_until(
        lambda: any(
            d["id"] == f"auto-{uid}/hall" and d["source"] == "auto"
            for d in httpx.get(f"{api_url}/api/v1/devices", headers=headers).json()
        )
    )
    q = wait_until(
        lambda: [
            x
            for x in httpx.get(f"{api_url}/api/v1/quarantine", headers=headers).json()
            if x["device_id"] == f"stray-{uid}"
        ]
    )
    assert q[0]["messages"] == 1 and "19.5" in q[0]["last_payloads"][0]
