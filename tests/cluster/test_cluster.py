"""A NATS cluster as ingest's transport, and database failover: nothing lost, nothing doubled, one leader.

Each test starts its own private services on loopback (tests/cluster/services.py); run with
PLACEWATCH_CLUSTER=1 (make test-cluster).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from placewatch.mqttclient import connect_args, make_client
from store.db import connect
from store.migrate import migrate
from tests.cluster.harness import FailoverResult, run_failover, run_nats
from tests.cluster.services import NATS_SERVER, NatsCluster
from tests.faults.harness import Result
from tests.helpers import load, station
from tests.services import TIMESCALEDB_SETTING, fresh_database, start_service

pytestmark = pytest.mark.cluster


def _lines(result: Result) -> str:
    pub = result.publisher
    return (
        f"lost={result.lost} doubled={result.doubled}\n"
        f"expected={result.expected} stored={result.stored_distinct} extra={result.extra} "
        f"wrong_values={result.wrong_values} rollup_count={result.rollup_count} dead_letters={result.dead_letters}\n"
        f"ingest workers SIGKILLed {result.kills}, NATS nodes SIGKILLed {result.broker_restarts}; "
        f"exits not caused by the run: {len(result.unexpected_exits)}; final SIGTERM exit {result.final_exit}\n"
        f"publishers: sent={pub.get('sent')} acked={pub.get('acked')} in {pub.get('acked_s', 0):.0f} s; "
        f"seed={result.seed} settle={result.settle_s:.0f} s duration={result.seconds:.0f} s"
    )


def _assert_exact(result: Result) -> None:
    assert not result.unexpected_exits, "a service exited by itself:\n" + "\n".join(result.unexpected_exits)
    assert result.publisher.get("acked") == result.expected, _lines(result)
    assert (result.lost, result.doubled) == (0, 0), _lines(result) + "\n" + result.log_tail
    assert (result.extra, result.wrong_values, result.dead_letters) == (0, 0, 0), _lines(result)
    assert result.rollup_count == result.expected, "hourly rollup disagrees\n" + _lines(result)
    assert result.final_exit == 0, result.log_tail


@pytest.mark.timeout(1200)
def test_nats_node_and_ingest_worker_killed_mid_stream_every_reading_stored_once(capsys, engine: str):
    with capsys.disabled():
        result = run_nats(engine=engine, say=lambda line: print(line, flush=True))
        print(_lines(result), flush=True)
    assert result.kills == 1 and result.broker_restarts == 1
    _assert_exact(result)


@pytest.mark.timeout(1200)
def test_primary_killed_and_standby_promoted_nothing_lost_and_one_decision_per_change(capsys, engine: str):
    with capsys.disabled():
        result: FailoverResult = run_failover(engine=engine, say=lambda line: print(line, flush=True))
        print(_lines(result), flush=True)
        print(result.decisions_summary(), flush=True)
    _assert_exact(result)
    # Every route went monitor -> precautionary_salt once: the crossing arrived while no database was writable.
    assert {tuple(a) for a in result.decisions.values()} == {("monitor", "precautionary_salt")}, (
        result.decisions_summary()
    )
    assert not result.repeated and not result.missed, result.decisions_summary()
    assert result.leaders >= 2, "the scheduler did not take the lead again on the new primary"
    assert result.api_after == "health 200, route 200 precautionary_salt", result.api_after


# --- topics that reach NATS as subjects and come back as the topics the decoders expect --------------------


def _server_version() -> tuple[int, int]:
    out = subprocess.run([NATS_SERVER, "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"v(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


@pytest.fixture
def cluster() -> Iterator[NatsCluster]:
    """A fresh three-node cluster."""
    c = NatsCluster(Path(tempfile.mkdtemp(prefix="pw-nats-")))
    c.start()
    c.wait_ready()
    yield c
    c.stop()
    shutil.rmtree(c.root, ignore_errors=True)


def _publish(url: str, topic: str, payload: bytes, timeout: float = 3.0) -> bool:
    """Publish once at QoS 1 on a new MQTT 3.1.1 connection; True when the server acknowledged it."""
    client = make_client(url, client_id=f"pw-topic-{uuid.uuid4().hex[:6]}", protocol="3.1.1")
    client.connect(**connect_args(client))  # type: ignore[arg-type]
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.timeout(300)
def test_device_ids_with_slashes_and_colons_round_trip_through_nats(cluster: NatsCluster, engine: str):
    ids = ["urn:dev:ow:10e2073a01080063", "gw-7/kitchen", "gw-7//hall", "/leading", "trailing/", "semi;colon~1"]
    dotted = "sensor.v2"  # nats-server 2.10+ carries '.' as '//'; 2.9 refuses it
    spaced = "kitchen sensor"  # refused by every nats-server: no encoding for a space
    with fresh_database() as dsn:
        with connect(dsn) as conn:
            migrate(conn, timescaledb=TIMESCALEDB_SETTING[engine])
        load(dsn, *[station(d) for d in [*ids, dotted, spaced]])
        env = {
            "PLACEWATCH_DATABASE_URL": dsn,
            "PLACEWATCH_TRANSPORT": "jetstream",
            "PLACEWATCH_NATS_URL": cluster.nats_urls,
            "PLACEWATCH_NATS_STREAM": f"PW_TOPICS_{uuid.uuid4().hex[:6]}",
            "PLACEWATCH_ENVIRONMENT": "test",
            "PLACEWATCH_SECRET_KEY": "topics-secret-key-that-is-long-enough",
            "PLACEWATCH_MQTT_CLIENT_ID": "pw-topics",
        }
        proc = start_service(["ingest"], env)
        try:
            proc.wait_for("subscribed", timeout=60)
            ts = int(datetime.now(UTC).timestamp()) * 1000
            body = orjson.dumps({"ts": ts, "values": {"air_temperature": 3.5}})
            for i, dev in enumerate(ids):
                node = cluster.nodes[i % len(cluster.nodes)]
                assert _publish(node.mqtt_url, f"placewatch/v1/devices/{dev}/readings", body), dev
            dotted_ok = _publish(cluster.nodes[0].mqtt_url, f"placewatch/v1/devices/{dotted}/readings", body)
            assert dotted_ok == (_server_version() >= (2, 10))
            assert not _publish(cluster.nodes[1].mqtt_url, f"placewatch/v1/devices/{spaced}/readings", body)
            want = {*ids, *([dotted] if dotted_ok else [])}
            deadline = time.monotonic() + 30
            got: set[str] = set()
            while time.monotonic() < deadline and got != want:
                with connect(dsn) as conn:
                    rows = conn.execute(
                        "SELECT s.device_id FROM readings r JOIN series s ON s.id = r.series_id"
                    ).fetchall()
                got = {r[0] for r in rows}
                time.sleep(0.3)
            assert got == want
            with connect(dsn) as conn:
                dead = conn.execute("SELECT topic, reason FROM dead_letters").fetchall()
            assert dead == []
        finally:
            assert proc.stop(signal.SIGTERM) == 0, proc.log()


@pytest.mark.timeout(300)
def test_redelivered_messages_are_stored_once_and_a_second_worker_takes_over(cluster: NatsCluster, engine: str):
    """A worker killed holding unacknowledged messages: the other gets them after the ack wait; stored once."""
    with fresh_database() as dsn:
        with connect(dsn) as conn:
            migrate(conn, timescaledb=TIMESCALEDB_SETTING[engine])
        devices = [f"redeliver-{i}" for i in range(10)]
        load(dsn, *[station(d) for d in devices])
        stream = f"PW_REDELIVER_{uuid.uuid4().hex[:6]}"
        env = {
            "PLACEWATCH_DATABASE_URL": dsn,
            "PLACEWATCH_TRANSPORT": "jetstream",
            "PLACEWATCH_NATS_URL": cluster.nodes[0].nats_url,
            "PLACEWATCH_NATS_STREAM": stream,
            "PLACEWATCH_NATS_ACK_WAIT_S": "3",
            "PLACEWATCH_INGEST_BATCH_MS": "60000",  # the first worker holds everything uncommitted
            "PLACEWATCH_INGEST_BATCH_ROWS": "1000000",
            "PLACEWATCH_ENVIRONMENT": "test",
            "PLACEWATCH_SECRET_KEY": "redeliver-secret-key-that-is-long-enough",
            "PLACEWATCH_STATS_SECONDS": "0.5",
        }
        holder = start_service(["ingest"], {**env, "PLACEWATCH_MQTT_CLIENT_ID": "pw-holder"})
        holder.wait_for("subscribed", timeout=60)
        ts0 = int(datetime.now(UTC).timestamp()) * 1000 - 3_600_000
        client = make_client(cluster.nodes[2].mqtt_url, client_id="pw-redeliver-pub", protocol="3.1.1")
        client.connect(**connect_args(client))  # type: ignore[arg-type]
        client.loop_start()

        def publish_all() -> None:
            sent = []
            for k in range(500):
                dev = devices[k % 10]
                body = orjson.dumps({"ts": ts0 + k * 1000, "values": {"air_temperature": k / 10}})
                sent.append(client.publish(f"placewatch/v1/devices/{dev}/readings", body, qos=1))
            for info in sent:
                info.wait_for_publish(10)

        publish_all()
        holder.wait_for("received=500", timeout=30)
        holder.stop(signal.SIGKILL)
        taker = start_service(
            ["ingest"], {**env, "PLACEWATCH_MQTT_CLIENT_ID": "pw-taker", "PLACEWATCH_INGEST_BATCH_MS": "100"}
        )
        try:
            taker.wait_for("committed=500", timeout=60)
            publish_all()  # the same 500 again, as a device whose PUBACKs were lost sends them
            line = taker.wait_for("committed=1000", timeout=60)
            assert "readings=500 duplicates=500" in line, line
            with connect(dsn) as conn:
                n, distinct = conn.execute("SELECT count(*), count(DISTINCT (series_id, ts)) FROM readings").fetchone()  # type: ignore[misc]
            assert (n, distinct) == (500, 500)
        finally:
            client.disconnect()
            client.loop_stop()
            assert taker.stop(signal.SIGTERM) == 0, taker.log()
