"""Many devices at a set rate, spread over processes so the publisher is not the bottleneck (benchmarks)."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from simulators import Noise
from simulators.publisher import DEFAULT_PREFIX, Publisher, readings_topic

_VALUE_VARIANTS = 1024


@dataclass(frozen=True, slots=True)
class FleetResult:
    """What a fleet run published: counts, and the rate measured from first publish to last PUBACK."""

    messages: int
    readings: int
    acked: int
    seconds: float
    devices: int
    processes: int
    readings_per_message: int
    first_ts: datetime
    last_ts: datetime

    @property
    def rate(self) -> float:
        """Acknowledged messages per second."""
        return self.acked / self.seconds if self.seconds > 0 else 0.0

    @property
    def readings_rate(self) -> float:
        """Readings (one timestamp of one device) per second, acknowledged."""
        return self.acked * self.readings_per_message / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for people."""
        return (
            f"fleet: {self.acked:,} of {self.messages:,} messages acknowledged ({self.readings:,} readings) "
            f"from {self.devices:,} devices in {self.seconds:.2f} s with {self.processes} processes: "
            f"{self.rate:,.0f} messages/s, {self.readings_rate:,.0f} readings/s"
        )


def device_ids(n: int, prefix: str = "fleet") -> list[str]:
    """fleet-00001, fleet-00002, ..."""
    width = max(5, len(str(n)))
    return [f"{prefix}-{i:0{width}d}" for i in range(1, n + 1)]


def value_fragments(seed: object = 0, n: int = _VALUE_VARIANTS) -> list[bytes]:
    """Pre-encoded `"values":{...}}` tails of a reading: plausible indoor temperature and humidity."""
    noise = Noise(seed, "fleet")
    out = []
    for i in range(n):
        values = {
            "temperature": round(17.0 + 6.0 * noise.unit(2 * i), 2),
            "relative_humidity": round(40.0 + 35.0 * noise.unit(2 * i + 1), 1),
        }
        out.append(orjson.dumps({"values": values})[1:])
    return out


def encode_message(ts_ms: int, step_ms: int, n: int, fragments: list[bytes], k: int) -> bytes:
    """n readings of one device from ts_ms, step_ms apart, as a native payload (array when n > 1)."""
    nf = len(fragments)
    if n == 1:
        return b'{"ts":%d,%s' % (ts_ms, fragments[k % nf])
    parts = [b'{"ts":%d,%s' % (ts_ms + i * step_ms, fragments[(k + i) % nf]) for i in range(n)]
    return b"[" + b",".join(parts) + b"]"


def _worker(
    w: int,
    args: dict[str, Any],
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """One process: its share of devices and messages, through one MQTT connection."""
    try:
        devices: list[str] = args["devices"][w :: args["processes"]]
        total: int = args["count"] // args["processes"] + (1 if w < args["count"] % args["processes"] else 0)
        per_message: int = args["readings_per_message"]
        step_ms: int = args["step_ms"]
        start_ms: int = args["start_ms"]
        rate: float = args["rate"] / args["processes"] if args["rate"] else 0.0
        topics = [readings_topic(d, args["prefix"]) for d in devices]
        fragments = value_fragments(w)
        nd = len(devices)
        pub = Publisher(
            args["mqtt_url"],
            protocol=args["protocol"],
            client_id=f"{args['id_prefix']}-publisher-{os.getpid()}-{w}",
            prefix=args["prefix"],
            window=args["window"],
            qos=args["qos"],
            threaded=False,
        )
        pub.connect()
    except Exception as exc:  # report instead of hanging the parent
        ready.put((w, f"{type(exc).__name__}: {exc}"))
        return
    ready.put((w, None))
    go.wait()
    t0 = time.time()
    publish = pub.publish
    span = per_message * step_ms
    for k in range(total):
        j, d = divmod(k, nd) if nd else (k, 0)
        publish(topics[d], encode_message(start_ms + j * span, step_ms, per_message, fragments, k))
        if rate and k % 32 == 31:
            ahead = (k + 1) / rate - (time.time() - t0)
            if ahead > 0:
                time.sleep(ahead)
    pub.flush(timeout=args["timeout"])
    t1 = time.time()
    results.put({"w": w, "sent": pub.sent, "acked": pub.acked, "t0": t0, "t1": t1})
    pub.close()


def run_fleet(
    mqtt_url: str,
    *,
    protocol: str = "5",
    devices: int = 100,
    count: int = 200_000,
    rate: float = 0.0,
    processes: int = 2,
    readings_per_message: int = 1,
    start: datetime | None = None,
    interval: timedelta = timedelta(minutes=1),
    prefix: str = DEFAULT_PREFIX,
    id_prefix: str = "fleet",
    window: int = 100,
    qos: int = 1,
    timeout: float = 600.0,
) -> FleetResult:
    """Publish `count` messages from `devices` devices (ids fleet-00001...) at `rate` messages/s in total
    (0: as fast as possible) over `processes` processes; each message carries `readings_per_message`
    readings `interval` apart. Timestamps are unique per device and, unless `start` is given, end near now.
    Returns when every message is acknowledged (QoS 1) or `timeout` passes.
    """
    if devices < 1 or count < 0 or processes < 1 or readings_per_message < 1:
        raise ValueError("devices, processes and readings_per_message must be at least 1; count at least 0")
    if readings_per_message > 10_000:
        raise ValueError("readings_per_message must be at most 10,000 (the native format's limit)")
    processes = min(processes, devices)
    ids = device_ids(devices, id_prefix)
    step_ms = int(interval.total_seconds() * 1000)
    per_device = math.ceil(count / devices) if count else 0
    if start is None:
        now_ms = int(datetime.now(UTC).timestamp() * 1000) // step_ms * step_ms
        start_ms = now_ms - per_device * readings_per_message * step_ms
    else:
        start_ms = int(start.timestamp() * 1000)
    args = {
        "mqtt_url": mqtt_url,
        "protocol": protocol,
        "devices": ids,
        "count": count,
        "rate": rate,
        "processes": processes,
        "readings_per_message": readings_per_message,
        "step_ms": step_ms,
        "start_ms": start_ms,
        "prefix": prefix,
        "id_prefix": id_prefix,
        "window": window,
        "qos": qos,
        "timeout": timeout,
    }
    ctx = mp.get_context("spawn")  # no inherited paho threads or sockets
    ready, results = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    procs = [ctx.Process(target=_worker, args=(w, args, ready, go, results), daemon=True) for w in range(processes)]
    for p in procs:
        p.start()
    try:
        errors = []
        for _ in procs:
            try:
                w, err = ready.get(timeout=60)
            except queue.Empty:
                raise TimeoutError("fleet workers did not connect within 60 s") from None
            if err:
                errors.append(f"worker {w}: {err}")
        if errors:
            raise ConnectionError("; ".join(errors))
        go.set()
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout + 30
        while len(got) < len(procs):
            try:
                got.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                raise TimeoutError(f"fleet did not finish within {timeout:g} s") from None
    finally:
        go.set()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    t0 = min(r["t0"] for r in got)
    t1 = max(r["t1"] for r in got)
    sent = sum(r["sent"] for r in got)
    acked = sum(r["acked"] for r in got)
    last_ms = start_ms + max(per_device * readings_per_message - 1, 0) * step_ms
    return FleetResult(
        messages=sent,
        readings=sent * readings_per_message,
        acked=acked,
        seconds=t1 - t0,
        devices=devices,
        processes=processes,
        readings_per_message=readings_per_message,
        first_ts=datetime.fromtimestamp(start_ms / 1000, UTC),
        last_ts=datetime.fromtimestamp(last_ms / 1000, UTC),
    )
