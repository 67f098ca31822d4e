"""A council's live stream: many devices, one reading message each per interval, RFC 3339 times.

Each of n devices publishes once every n / rate seconds (in an order of their own, the same every round),
its time being the moment it publishes, written the ways gateways write it (mixed in one stream): whole
seconds or milliseconds or microseconds, with `Z` or with an offset (+00:00, +01:00, -05:00, +05:30).
Two values per message (temperature, relative humidity), and a third (battery) from every third device.
Several publisher processes, each paced to its share of the rate, so the publisher is never what limits
the consumer being measured.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from simulators.fleet import device_ids
from simulators.publisher import Publisher, readings_topic

_ZONES = [timezone(timedelta(hours=h, minutes=m)) for h, m in ((0, 0), (1, 0), (-5, 0), (5, 30))]


def time_text(t: float, k: int) -> str:
    """The instant t (epoch seconds) as RFC 3339 in the k-th of the stream's styles."""
    style = k % 6
    if style in (0, 1, 2):  # UTC with Z: seconds, milliseconds, microseconds
        dt = datetime.fromtimestamp(t, UTC)
        if style == 0:
            return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        if style == 1:
            return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    zone = _ZONES[(k // 6) % len(_ZONES)]
    dt = datetime.fromtimestamp(t, zone)
    return dt.isoformat(timespec="seconds" if style == 3 else "milliseconds")


def payload(t: float, k: int, device_index: int) -> bytes:
    """One reading message: the time and two or three values."""
    values: dict[str, float] = {
        "temperature": round(17.0 + (k * 7919 % 600) / 100, 2),
        "relative_humidity": round(40.0 + (k * 104729 % 350) / 10, 1),
    }
    if device_index % 3 == 0:
        values["battery"] = float(100 - device_index % 50)
    return orjson.dumps({"ts": time_text(t, k), "values": values})


def values_per_message(devices: int) -> float:
    """Mean readings per message of a stream over `devices` devices (a whole number of rounds)."""
    return 2 + len(range(0, devices, 3)) / devices


@dataclass(frozen=True, slots=True)
class StreamResult:
    """What was published and acknowledged."""

    messages: int
    readings: int
    acked: int
    seconds: float

    @property
    def rate(self) -> float:
        """Acknowledged messages per second."""
        return self.acked / self.seconds if self.seconds > 0 else 0.0


def _worker(w: int, a: dict[str, Any], ready: Any, go: Any, results: Any) -> None:
    try:
        ids: list[str] = a["devices"]
        mine = list(range(w, len(ids), a["processes"]))
        random.Random(w).shuffle(mine)  # devices report at their own moments, not in the order of their ids
        topics = [readings_topic(ids[i], a["prefix"]) for i in mine]
        total = a["count"] // a["processes"] + (1 if w < a["count"] % a["processes"] else 0)
        rate = a["rate"] / a["processes"]
        pub = Publisher(
            a["mqtt_url"],
            client_id=f"stream-{os.getpid()}-{w}",
            prefix=a["prefix"],
            window=a["window"],
            threaded=False,
        )
        pub.connect()
    except Exception as exc:  # report instead of hanging the parent
        ready.put((w, f"{type(exc).__name__}: {exc}"))
        return
    ready.put((w, None))
    go.wait()
    t0 = time.time()
    readings = 0
    nd = len(mine)
    for k in range(total):
        j = k % nd
        body = payload(time.time(), k + w, mine[j])
        readings += 3 if mine[j] % 3 == 0 else 2
        pub.publish(topics[j], body)
        if k % 32 == 31:
            ahead = (k + 1) / rate - (time.time() - t0)
            if ahead > 0:
                time.sleep(ahead)
    pub.flush(timeout=a["timeout"])
    results.put({"sent": pub.sent, "acked": pub.acked, "readings": readings, "t0": t0, "t1": time.time()})
    pub.close()


def publish_stream(
    mqtt_url: str,
    *,
    devices: int,
    count: int,
    rate: float,
    prefix: str,
    id_prefix: str = "bench",
    processes: int = 2,
    window: int = 200,
    timeout: float = 600.0,
) -> StreamResult:
    """Publish `count` messages at `rate` per second in all from `devices` devices; return when all are acked."""
    if devices < processes or count < 1 or rate <= 0:
        raise ValueError("need at least one device per process, a count and a rate")
    a = {
        "mqtt_url": mqtt_url,
        "devices": device_ids(devices, id_prefix),
        "count": count,
        "rate": rate,
        "processes": processes,
        "prefix": prefix,
        "window": window,
        "timeout": timeout,
    }
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    procs = [ctx.Process(target=_worker, args=(w, a, ready, go, results), daemon=True) for w in range(processes)]
    for p in procs:
        p.start()
    got: list[dict[str, Any]] = []
    try:
        errors = []
        for _ in procs:
            w, err = ready.get(timeout=60)
            if err:
                errors.append(f"stream worker {w}: {err}")
        if errors:
            raise ConnectionError("; ".join(errors))
        go.set()
        while len(got) < len(procs):
            try:
                got.append(results.get(timeout=timeout + 30))
            except queue.Empty:
                raise TimeoutError(f"stream did not finish within {timeout:g} s") from None
    finally:
        go.set()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    return StreamResult(
        messages=sum(r["sent"] for r in got),
        readings=sum(r["readings"] for r in got),
        acked=sum(r["acked"] for r in got),
        seconds=max(r["t1"] for r in got) - min(r["t0"] for r in got),
    )
