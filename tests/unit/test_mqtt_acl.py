"""Per-device MQTT credentials and ACLs: hashes Mosquitto accepts, usernames it can parse, literal topics."""

from __future__ import annotations

import base64
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from placewatch.mqtt_security import (
    check_password,
    credentials,
    mosquitto_hash,
    plan_accounts,
    read_password_file,
    render_acl,
    render_password_file,
    topic_problem,
    username_for,
)
from placewatch.settings import Settings


def _settings(**kw: object) -> Settings:
    return Settings(database_url=None, **kw)  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd is not installed")
def test_our_hash_is_the_one_mosquitto_passwd_writes(tmp_path: Path) -> None:
    pwfile = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pwfile), "road 1/a", "s3cret-Pässword"], check=True)
    theirs = read_password_file(pwfile)["road 1/a"]
    assert theirs.startswith("$7$101$")
    salt = base64.b64decode(theirs.split("$")[3])
    assert mosquitto_hash("s3cret-Pässword", salt=salt) == theirs
    assert check_password("s3cret-Pässword", theirs)
    assert not check_password("wrong", theirs)


def test_a_hash_checks_only_its_own_password() -> None:
    h = mosquitto_hash("correct horse")
    _, seven, iterations, salt, digest = h.split("$")
    assert (seven, iterations) == ("7", "101")
    assert len(base64.b64decode(salt)) == 12 and len(base64.b64decode(digest)) == 64
    assert check_password("correct horse", h) and not check_password("correct horse ", h)
    assert mosquitto_hash("correct horse") != h  # a new salt each time


def test_usernames_keep_slashes_and_inner_spaces_but_not_colons_or_outer_blanks() -> None:
    assert username_for("road-1") == "road-1"
    assert username_for("kitchen/floor sensor") == "kitchen/floor sensor"
    urn = username_for("urn:dev:ow:10e2073a01080063")
    assert ":" not in urn and urn.startswith("urn_dev_ow_10e2073a01080063~")
    assert urn == username_for("urn:dev:ow:10e2073a01080063")  # stable
    assert username_for("urn:dev:ow:10e2073a01080063") != username_for("urn_dev_ow_10e2073a01080063:")
    for awkward in (" leading", "trailing ", "#hash", "tab\there", "placewatch-ingest", "gateway-tts"):
        name = username_for(awkward)
        assert name != awkward and name == name.strip() and not name.startswith("#")
        assert "~" in name  # so it can never be a service or gateway account


def test_ids_with_wildcards_or_line_breaks_cannot_have_topics() -> None:
    assert topic_problem("a/b c:d") is None
    for bad in ("a+b", "x/#", "nul\x00", "line\nbreak", ""):
        assert topic_problem(bad) is not None


def test_each_device_may_write_only_its_own_literal_topics() -> None:
    devices = [
        ("kitchen/floor sensor", None),
        ("urn:dev:ow:1", "native"),
        ("plug-7", "tasmota"),
        ("0004a30b001c1234", "chirpstack"),
        ("porch", "zigbee2mqtt"),
        ("bad+id", None),
        ("odd", "carrier-pigeon"),
    ]
    plan = plan_accounts(devices, _settings(formats="native,tasmota"))
    by_device = {a.device_id: a for a in plan.accounts if a.role == "device"}
    assert set(by_device) == {"kitchen/floor sensor", "urn:dev:ow:1", "plug-7"}
    assert by_device["kitchen/floor sensor"].rules == (
        ("write", "placewatch/v1/devices/kitchen/floor sensor/readings"),
        ("write", "placewatch/v1/devices/kitchen/floor sensor/status"),
    )
    assert by_device["urn:dev:ow:1"].rules[0] == ("write", "placewatch/v1/devices/urn:dev:ow:1/readings")
    assert by_device["plug-7"].rules == (
        ("write", "tele/plug-7/+"),
        ("write", "stat/plug-7/+"),
        ("read", "cmnd/plug-7/+"),
    )
    assert dict(plan.skipped).keys() == {"bad+id", "odd"}
    assert plan.via_gateway == {"chirpstack": 1, "zigbee2mqtt": 1}
    accounts = {a.username: a for a in plan.accounts}
    # Gateways only for the formats in use (enabled, or named by a device); their topics as ingest reads them.
    assert {u for u in accounts if u.startswith("gateway-")} == {"gateway-chirpstack", "gateway-zigbee2mqtt"}
    assert ("readwrite", "zigbee2mqtt/#") in accounts["gateway-zigbee2mqtt"].rules
    assert ("write", "application/+/device/+/event/up") in accounts["gateway-chirpstack"].rules
    ingest = set(accounts["placewatch-ingest"].rules)
    assert {("read", "placewatch/v1/devices/#"), ("read", "tele/#"), ("read", "zigbee2mqtt/#")} <= ingest
    assert all(access == "read" for access, _ in ingest)
    assert accounts["placewatch-alerts"].rules[0] == ("readwrite", "placewatch/v1/alerts/#")


def test_the_acl_grants_nothing_outside_a_user_block() -> None:
    plan = plan_accounts([("a b", None), ("c/d", None)], _settings(topic_prefix="council/v1"))
    text = render_acl(plan.accounts, generated_at=datetime(2026, 1, 15, tzinfo=UTC))
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines[0].startswith("user ")
    assert "user a b" in lines and "topic write council/v1/devices/a b/readings" in lines
    assert "user c/d" in lines and "topic write council/v1/devices/c/d/status" in lines
    assert not any(ln.startswith("pattern") for ln in lines)


def test_existing_passwords_are_kept_and_rotated_only_when_asked(tmp_path: Path) -> None:
    plan = plan_accounts([("d1", None), ("d2", None)], _settings())
    first = credentials(plan.accounts, {})
    assert {a.username for a, _ in first.new} == {a.username for a in plan.accounts}
    for a, password in first.new:
        assert check_password(password, first.hashes[a.username])
    pwfile = tmp_path / "passwd"
    pwfile.write_text(render_password_file(first.hashes | {"manual-user": mosquitto_hash("x")}))
    existing = read_password_file(pwfile)
    again = credentials(plan.accounts, existing)
    assert again.new == [] and again.hashes["d1"] == first.hashes["d1"] and "manual-user" in again.hashes
    assert again.kept_unknown == ["manual-user"]
    assert "manual-user" not in credentials(plan.accounts, existing, prune=True).hashes
    one = credentials(plan.accounts, existing, rotate={"d2"})
    assert [a.username for a, _ in one.new] == ["d2"] and one.hashes["d1"] == first.hashes["d1"]
    assert one.hashes["d2"] != first.hashes["d2"]
    assert len(credentials(plan.accounts, existing, rotate=set()).new) == len(plan.accounts)


def test_two_devices_that_would_share_a_username_are_refused() -> None:
    clash = username_for("x:y")
    with pytest.raises(ValueError, match="share the username"):
        plan_accounts([("x:y", None), (clash, None)], _settings())
