"""Security through the real services: per-device MQTT credentials and ACLs on a private Mosquitto, the ingest
check that topic and payload name the same device, the API's security headers, login rate limit and secrets."""

from __future__ import annotations

import csv
import io
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import httpx
import paho.mqtt.client as mqtt
import pytest

from api.ratelimit import SlidingWindowLimiter
from placewatch.embedded import free_port
from placewatch.mqtt_security import mosquitto_hash
from placewatch.mqttclient import connect_args, make_client, probe
from placewatch.settings import SettingsError, load_settings
from tests.conftest import service_env, wait_until
from tests.helpers import load, station
from tests.services import ROOT, start_service

pytestmark = pytest.mark.integration
needs_mosquitto = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")


# --- a private Mosquitto with the generated files ------------------------------------------------


@dataclass
class SecuredBroker:
    """A Mosquitto on a free port that loads the password file and ACL `placewatch mqtt acl` wrote."""

    port: int
    passwords: Path
    acl: Path
    credentials: dict[str, dict[str, str]]  # username -> row of the credentials CSV
    proc: subprocess.Popen[bytes]
    cli: Any

    def url(self, username: str, password: str | None = None) -> str:
        pw = self.credentials[username]["password"] if password is None else password
        return f"mqtt://{quote(username, safe='')}:{quote(pw, safe='')}@127.0.0.1:{self.port}"

    def user_of(self, device_id: str) -> str:
        return next(u for u, row in self.credentials.items() if row["device_id"] == device_id)

    def reload(self) -> None:
        """SIGHUP: Mosquitto rereads its password file and ACL."""
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)


def _run_acl_cli(database_url: str, workdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLACEWATCH_DATABASE_URL": database_url, "PLACEWATCH_FORMATS": "native,tasmota"}
    cmd = [sys.executable, "-m", "placewatch.cli", "mqtt", "acl"]
    cmd += ["--passwords", str(workdir / "passwd"), "--acl", str(workdir / "acl"), *extra]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done


def _readable_by_mosquitto(*paths: Path) -> None:
    # Run as root, Mosquitto drops to its own user before reading the files (as in the container).
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("mosquitto")
        except KeyError:
            return
        for p in (*paths, *{p.parent for p in paths}):
            os.chown(p, user.pw_uid, user.pw_gid)


@pytest.fixture
def devices(database_url: str, uid: str) -> dict[str, str]:
    """Registry devices with awkward ids: a '/' and spaces, colons, a plain one, a Tasmota plug."""
    ids = {
        "slash": f"sec-{uid}/kitchen floor sensor",
        "urn": f"urn:dev:sec:{uid}",
        "plain": f"sec-{uid}-plain",
        "tasmota": f"sec-{uid}-plug",
    }
    plug = station(ids["tasmota"])
    plug["properties"]["format"] = "tasmota"
    load(database_url, station(ids["slash"]), station(ids["urn"]), station(ids["plain"]), plug)
    return ids


@pytest.fixture
def secured(database_url: str, devices: dict[str, str]) -> Iterator[SecuredBroker]:
    # Not under pytest's tmp_path (mode 0700 all the way down): Mosquitto's own user must reach the files.
    workdir = Path(tempfile.mkdtemp(prefix="pw-mqtt-acl-"))
    out = workdir / "credentials.csv"
    cli = _run_acl_cli(database_url, workdir, "--credentials-out", str(out))
    rows = {r["username"]: r for r in csv.DictReader(io.StringIO(out.read_text()))}
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                f"listener {port} 127.0.0.1",
                "allow_anonymous false",
                f"password_file {workdir / 'passwd'}",
                f"acl_file {workdir / 'acl'}",
                "persistence false",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                "",
            ]
        )
    )
    _readable_by_mosquitto(workdir / "passwd", workdir / "acl")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.PIPE)
    broker = SecuredBroker(port, workdir / "passwd", workdir / "acl", rows, proc, cli)
    try:
        deadline = time.monotonic() + 10
        while not probe(broker.url("placewatch-api"), timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"mosquitto did not start: {proc.stderr.read() if proc.stderr else ''!r}")
        yield broker
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)


class Client:
    """A paho client that says whether the broker accepted its login, and collects what it receives."""

    def __init__(self, url: str, *, subscribe: str | None = None) -> None:
        self.accepted: bool | None = None
        self.got: list[mqtt.MQTTMessage] = []
        self._answered = threading.Event()
        self._subscribed = threading.Event()
        self.client = make_client(url, client_id=f"pw-sec-{uuid.uuid4().hex[:8]}", protocol="5")

        def on_connect(c: mqtt.Client, u: object, f: object, rc: Any, p: object = None) -> None:
            self.accepted = not rc.is_failure
            if self.accepted and subscribe:
                c.subscribe(subscribe, qos=1)
            self._answered.set()

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = lambda c, u, m: self.got.append(m)
        self.client.connect(**connect_args(self.client))  # type: ignore[arg-type]
        self.client.loop_start()
        self._answered.wait(10)
        if self.accepted and subscribe:
            self._subscribed.wait(10)

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _reading(value: float, ts: str = "2026-01-15T06:30:00Z") -> str:
    return json.dumps({"ts": ts, "values": {"road_surface_temperature": value}})


# --- MQTT credentials and ACLs -------------------------------------------------------------------


@needs_mosquitto
def test_a_device_publishes_on_its_own_topics_and_cannot_on_another_devices(secured: SecuredBroker, devices):
    ingest = Client(secured.url("placewatch-ingest"), subscribe="placewatch/v1/devices/#")
    slash = Client(secured.url(secured.user_of(devices["slash"])))
    assert ingest.accepted and slash.accepted
    own = f"placewatch/v1/devices/{devices['slash']}/readings"
    other = f"placewatch/v1/devices/{devices['plain']}/readings"
    slash.publish(other, _reading(-9.0))  # the broker acknowledges and drops it
    slash.publish(f"placewatch/v1/devices/{devices['slash']}/status", "online")
    slash.publish(own, _reading(1.5))  # after the denied one, on the same connection: delivered in order
    wait_until(lambda: any(m.topic == own for m in ingest.got))
    assert [m.topic for m in ingest.got] == [f"placewatch/v1/devices/{devices['slash']}/status", own]
    # A ':' in the id: Mosquitto's password file cannot hold it, so the login is a stand-in; topics are literal.
    urn_user = secured.user_of(devices["urn"])
    assert ":" not in urn_user
    urn = Client(secured.url(urn_user))
    urn.publish(f"placewatch/v1/devices/{devices['urn']}/readings", _reading(2.5))
    wait_until(lambda: any(m.topic.endswith(f"{devices['urn']}/readings") for m in ingest.got))
    for c in (ingest, slash, urn):
        c.close()


@needs_mosquitto
def test_a_device_cannot_read_other_devices_or_alerts_and_only_alerts_may_write_alerts(secured: SecuredBroker, devices):
    plain = Client(secured.url(secured.user_of(devices["plain"])), subscribe="#")
    alerts = Client(secured.url("placewatch-alerts"), subscribe="placewatch/v1/alerts/#")
    slash = Client(secured.url(secured.user_of(devices["slash"])))
    slash.publish("placewatch/v1/alerts/gritting/R1", '{"forged": true}')
    slash.publish(f"placewatch/v1/devices/{devices['slash']}/readings", _reading(0.5))
    alerts.publish("placewatch/v1/alerts/gritting/R1", '{"action": "salt"}')
    wait_until(lambda: len(alerts.got) == 1)
    time.sleep(0.5)
    assert [json.loads(m.payload) for m in alerts.got] == [{"action": "salt"}]
    assert plain.got == []  # subscribed to '#', granted nothing to read
    alerts.publish("placewatch/v1/alerts/gritting/R1", "")  # clear the retained alert
    for c in (plain, alerts, slash):
        c.close()


@needs_mosquitto
def test_tasmota_plugs_write_only_their_own_telemetry(secured: SecuredBroker, devices):
    ingest = Client(secured.url("placewatch-ingest"), subscribe="tele/#")
    plug = Client(secured.url(secured.user_of(devices["tasmota"])))
    plug.publish(f"tele/{devices['plain']}/SENSOR", '{"AM2301": {"Temperature": 40}}')
    plug.publish(f"tele/{devices['tasmota']}/x/SENSOR", '{"AM2301": {"Temperature": 41}}')  # another id, "…/x"
    plug.publish(f"tele/{devices['tasmota']}/SENSOR", '{"AM2301": {"Temperature": 4.2}}')
    wait_until(lambda: ingest.got)
    time.sleep(0.3)
    assert [m.topic for m in ingest.got] == [f"tele/{devices['tasmota']}/SENSOR"]
    for c in (ingest, plug):
        c.close()


def _accepted(url: str) -> bool | None:
    c = Client(url)
    c.close()
    return c.accepted


@needs_mosquitto
def test_wrong_passwords_and_anonymous_logins_are_refused(secured: SecuredBroker, devices):
    user = secured.user_of(devices["plain"])
    assert _accepted(secured.url(user)) is True
    assert _accepted(secured.url(user, "not-the-password")) is False
    assert _accepted(f"mqtt://127.0.0.1:{secured.port}") is False
    other = secured.user_of(devices["slash"])  # someone else's password does not open this account
    assert _accepted(secured.url(user, secured.credentials[other]["password"])) is False


@needs_mosquitto
def test_running_again_keeps_every_password_and_rotate_replaces_only_the_one_named(
    secured: SecuredBroker, devices, database_url: str
):
    before = secured.passwords.read_text()
    again = _run_acl_cli(database_url, secured.passwords.parent)
    assert again.stdout == ""  # no new passwords to show
    assert secured.passwords.read_text() == before
    user = secured.user_of(devices["plain"])
    rotated = _run_acl_cli(database_url, secured.passwords.parent, "--rotate", devices["plain"])
    new_rows = list(csv.DictReader(io.StringIO(rotated.stdout)))
    assert [r["username"] for r in new_rows] == [user]
    changed = [
        a for a, b in zip(before.splitlines(), secured.passwords.read_text().splitlines(), strict=True) if a != b
    ]
    assert [line.split(":")[0] for line in changed] == [user]
    _readable_by_mosquitto(secured.passwords, secured.acl)
    secured.reload()
    assert _accepted(secured.url(user)) is False  # the old password no longer works
    assert _accepted(secured.url(user, new_rows[0]["password"])) is True


@needs_mosquitto
def test_ingest_behind_the_acl_stores_what_a_device_may_send_and_nothing_it_may_not(
    secured: SecuredBroker, devices, database_url: str, db, uid: str
):
    broker = SimpleNamespace(url=secured.url("placewatch-ingest"), protocol="5")
    env = service_env(
        database_url, broker, PLACEWATCH_MQTT_CLIENT_ID=f"pw-sec-ingest-{uid}", PLACEWATCH_MQTT_SHARED_GROUP="ingest"
    )
    proc = start_service(["ingest"], env)
    try:
        proc.wait_for("subscribed", timeout=30)
        slash = Client(secured.url(secured.user_of(devices["slash"])))
        slash.publish(f"placewatch/v1/devices/{devices['plain']}/readings", _reading(-20.0))  # impersonation
        slash.publish(f"placewatch/v1/devices/{devices['slash']}/readings", _reading(3.25))
        slash.close()

        def stored(dev: str) -> list[float]:
            rows = db.execute(
                "SELECT r.value FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = %s",
                (dev,),
            ).fetchall()
            return [r[0] for r in rows]

        wait_until(lambda: stored(devices["slash"]) == [3.25])
        assert stored(devices["plain"]) == []
    finally:
        proc.stop()


# --- ingest: topic and payload must name the same device ------------------------------------------


def test_ingest_refuses_a_message_whose_topic_and_payload_name_different_devices(
    database_url, db, ingest, publisher, uid
):
    a, b = f"topic-{uid}", f"payload-{uid}"
    load(database_url, station(a), station(b))
    prefix = f"pwtest-{uid}/v1"
    ingest(PLACEWATCH_TOPIC_PREFIX=prefix)
    body = {"device_id": b, "ts": "2026-01-15T06:30:00Z", "values": {"road_surface_temperature": -4.0}}
    publisher.publish(f"{prefix}/devices/{a}/readings", json.dumps(body))

    def dead() -> list[tuple[str, str]]:
        return db.execute("SELECT topic, reason FROM dead_letters WHERE topic LIKE %s", (f"{prefix}/%",)).fetchall()

    rows = wait_until(dead)
    assert rows == [(f"{prefix}/devices/{a}/readings", f"payload names device {b!r} but the topic names {a!r}")]
    stored = db.execute(
        "SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id IN (%s, %s)", (a, b)
    ).fetchone()[0]
    assert stored == 0


# --- API: headers, login rate limit, secrets ------------------------------------------------------


def test_pages_and_api_answers_carry_the_security_headers(api_url):
    for path in ("/api/v1/live", "/openapi.json", "/api/v1/devices", "/metrics", "/"):
        r = httpx.get(api_url + path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "camera=()" in r.headers["permissions-policy"]
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert "unsafe-inline" not in csp.split("style-src-attr")[0] and "unsafe-eval" not in csp
        assert "strict-transport-security" not in r.headers  # plain http
    # Served over https (here: a trusted proxy on loopback says so), browsers are told to stay on https.
    r = httpx.get(api_url + "/api/v1/live", headers={"X-Forwarded-Proto": "https"})
    assert r.headers["strict-transport-security"].startswith("max-age=31536000")
    docs = httpx.get(api_url + "/docs").headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in docs  # Swagger UI's own policy; the API and pages never get a CDN


@pytest.fixture
def private_api(database_url: str, mqtt_broker: Any) -> Iterator[str]:
    """An API process of its own: the login limiter is per process, and this test trips it."""
    port = free_port()
    proc = start_service(["api"], service_env(database_url, mqtt_broker, PLACEWATCH_API_PORT=str(port)))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), timeout=30)
        yield url
    finally:
        proc.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/api/v1/live", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _login(url: str, name: str, password: str, address: str) -> httpx.Response:
    # uvicorn takes X-Forwarded-For from its trusted proxy (loopback): each "address" is a different client.
    return httpx.post(
        url + "/api/v1/auth/token", data={"username": name, "password": password}, headers={"X-Forwarded-For": address}
    )


def test_the_token_endpoint_limits_failed_logins_per_username_and_per_address(private_api, make_user):
    victim, victim_pw = make_user("highways")
    # Ten wrong passwords for one user, each from a different address: the eleventh try is refused,
    # even with the right password, and says when to come back.
    for i in range(10):
        assert _login(private_api, victim, "guess", f"203.0.113.{i}").status_code == 401
    r = _login(private_api, victim, victim_pw, "203.0.113.99")
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # Ten failures from one address for made-up users: that address is refused, others are not.
    for i in range(10):
        assert _login(private_api, f"nobody-{i}", "guess", "198.51.100.7").status_code == 401
    other, other_pw = make_user("officer", patch="north")
    assert _login(private_api, other, other_pw, "198.51.100.7").status_code == 429
    assert _login(private_api, other, other_pw, "198.51.100.8").status_code == 200


def test_unsafe_secrets_are_refused_in_production_and_a_long_random_one_is_accepted():
    for unsafe in ("change-me", "development-only-secret", "secret", "x" * 31):
        with pytest.raises(SettingsError, match="PLACEWATCH_SECRET_KEY"):
            load_settings(environment="production", secret_key=unsafe)
    with pytest.raises(SettingsError, match="PLACEWATCH_SECRET_KEY"):
        load_settings(environment="production")  # the development default
    assert load_settings(environment="production", secret_key=uuid.uuid4().hex * 2).environment == "production"
    assert load_settings(environment="development").secret_key.get_secret_value() == "development-only-secret"


# --- the shipped Mosquitto configuration --------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@needs_mosquitto
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_shipped_mosquitto_conf_serves_tls_with_passwords_only():
    work = Path(tempfile.mkdtemp(prefix="pw-mqtt-tls-"))
    try:
        certs, data = work / "certs", work / "data"
        certs.mkdir()
        data.mkdir()
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
                 "-days", "1", "-subj", "/CN=placewatch-test-ca", cwd=certs)  # fmt: skip
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
                 "-subj", "/CN=localhost", cwd=certs)  # fmt: skip
        (certs / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", "server.crt", "-days", "1", "-extfile", "san.ext", cwd=certs)  # fmt: skip
        password = uuid.uuid4().hex
        (work / "passwd").write_text(f"svc:{mosquitto_hash(password)}\n")
        plain, tls = free_port(), free_port()
        conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
        conf = (
            conf.replace("listener 1883", f"listener {plain} 127.0.0.1")
            .replace("listener 8883", f"listener {tls} 127.0.0.1")
            .replace("/mosquitto/data/", f"{data}/")
            .replace("/mosquitto/config/passwd", str(work / "passwd"))
            .replace("/mosquitto/certs/", f"{certs}/")
            .replace("log_dest stdout", "log_dest stderr")
        )
        (work / "mosquitto.conf").write_text(conf)
        _readable_by_mosquitto(work / "passwd", certs / "server.key", certs / "server.crt", certs / "ca.crt", data)
        proc = subprocess.Popen(["mosquitto", "-c", str(work / "mosquitto.conf")], stderr=subprocess.PIPE)
        try:
            ca = str(certs / "ca.crt")
            wait_until(lambda: probe(f"mqtts://svc:{password}@127.0.0.1:{tls}", ca_file=ca, timeout=1), timeout=15)
            assert not probe(f"mqtts://127.0.0.1:{tls}", ca_file=ca)  # anonymous: refused
            assert not probe(f"mqtts://svc:wrong@127.0.0.1:{tls}", ca_file=ca)
            assert not probe(f"mqtt://svc:{password}@127.0.0.1:{tls}", timeout=1)  # no plain MQTT on 8883
            assert probe(f"mqtt://svc:{password}@127.0.0.1:{plain}")  # 1883: inside the compose network
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):  # 1.2 at least; 1.3 when offered
                ctx = ssl.create_default_context(cafile=ca)
                ctx.minimum_version = ctx.maximum_version = version
                with socket.create_connection(("127.0.0.1", tls), timeout=5) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                        assert s.version() == version.name.replace("_", ".")
            ctx = ssl.create_default_context(cafile=ca)
            with socket.create_connection(("127.0.0.1", tls), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    assert s.version() == "TLSv1.3"  # the best both sides offer
        finally:
            proc.terminate()
            proc.wait(5)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_login_limiter_counts_failures_in_a_sliding_minute():
    now = [1000.0]
    limiter = SlidingWindowLimiter(3, 60.0, clock=lambda: now[0], max_keys=2)
    keys = ("address:a", "user:u")
    for _ in range(3):
        assert limiter.retry_after(keys) is None
        limiter.failed(keys)
        now[0] += 10
    assert limiter.retry_after(keys) == pytest.approx(30.0)  # the first failure leaves the window at 1060
    now[0] = 1060.5
    assert limiter.retry_after(keys) is None
    limiter.failed(("address:b",))
    limiter.failed(("address:c",))  # bounded memory: the least recently failed keys are forgotten first
    assert limiter.retry_after(("user:u",)) is None
    assert SlidingWindowLimiter(0).retry_after(keys) is None  # 0: no limit
