"""Ingest memory with the database stalled: the queue is bounded, so resident memory stays flat.

The stall: the PostgreSQL backend serving ingest's writer connection is stopped with SIGSTOP (the rest of
the server runs on), 200,000 messages are published, ingest's RSS is sampled, then the backend is resumed
and every reading must arrive.

    python -m bench.memory [--messages 200000]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import ROOT, Figure, print_table, rss_mb
from bench.ingest import _count_rows, _pg_backend_pids, _registry
from core.registry import parse_registry
from placewatch.embedded import start_mosquitto
from simulators.fleet import device_ids, run_fleet
from store import registry
from store.db import connect
from store.migrate import migrate
from tests.services import fresh_database


def main(argv: list[str] | None = None) -> list[Figure]:
    """Run the memory benchmark and print its table."""
    ap = argparse.ArgumentParser(prog="python -m bench.memory")
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--devices", type=int, default=1000)
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-mem-"))
    broker = start_mosquitto(tmp, persistence=False)
    try:
        with fresh_database() as dsn:
            with connect(dsn) as conn:
                migrate(conn)
            text = _registry(device_ids(a.devices, "bench"))
            with connect(dsn) as conn:
                registry.load(conn, parse_registry(text), text=text)
            env = {
                **os.environ,
                "PLACEWATCH_DATABASE_URL": dsn,
                "PLACEWATCH_MQTT_URL": broker.url,
                "PLACEWATCH_TOPIC_PREFIX": "bench-m/v1",
                "PLACEWATCH_MQTT_CLIENT_ID": "bench-memory",
                "PLACEWATCH_LOG_LEVEL": "warning",
                "PLACEWATCH_ENVIRONMENT": "test",
            }
            proc = subprocess.Popen(
                [sys.executable, "-m", "placewatch.cli", "ingest"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                backends: list[int] = []
                deadline = time.monotonic() + 30
                while not backends and time.monotonic() < deadline:
                    time.sleep(0.2)
                    backends = _pg_backend_pids(dsn, "placewatch")
                time.sleep(1.0)
                idle_rss = rss_mb(proc.pid)
                for pid in backends:
                    os.kill(pid, signal.SIGSTOP)
                print(
                    f"memory bench: database stalled (backend {backends} stopped); publishing {a.messages:,}",
                    flush=True,
                )
                peak = [idle_rss]
                stop = threading.Event()

                def sample() -> None:
                    while not stop.is_set():
                        peak[0] = max(peak[0], rss_mb(proc.pid))
                        time.sleep(0.2)

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                pub = threading.Thread(
                    target=run_fleet,
                    args=(broker.url,),
                    kwargs={
                        "devices": a.devices,
                        "count": a.messages,
                        "processes": 2,
                        "prefix": "bench-m/v1",
                        "id_prefix": "bench",
                        "window": 200,
                        "timeout": 900,
                    },
                    daemon=True,
                )
                pub.start()
                pub.join(900)
                time.sleep(3)
                stalled_peak = peak[0]
                for pid in backends:
                    os.kill(pid, signal.SIGCONT)
                t0 = time.monotonic()
                while _count_rows(dsn) < 2 * a.messages and time.monotonic() - t0 < 600:
                    time.sleep(0.5)
                stop.set()
                stored = _count_rows(dsn)
            finally:
                for pid in _pg_backend_pids(dsn, "placewatch"):
                    try:
                        os.kill(pid, signal.SIGCONT)
                    except ProcessLookupError:
                        pass
                proc.terminate()
                proc.wait(60)
            print(
                f"  idle RSS {idle_rss:.0f} MB; peak while stalled {stalled_peak:.0f} MB; "
                f"after resuming, {stored:,} of {2 * a.messages:,} rows stored"
            )
            figures = [
                Figure(
                    "ingest RSS, database stalled, 200,000 messages",
                    stalled_peak,
                    "MB",
                    f"idle {idle_rss:.0f} MB",
                    stalled_peak / idle_rss,
                    "< 200 MB",
                    stalled_peak < 200,
                ),
                Figure(
                    "rows stored after the stall ends",
                    stored,
                    "rows",
                    f"published {2 * a.messages:,}",
                    stored / (2 * a.messages),
                    "1.00",
                    stored == 2 * a.messages,
                ),
            ]
            print_table("memory", figures)
            return figures
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
