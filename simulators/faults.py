"""Faulty devices: what real sensors and careless integrations send, so ingest's refusals can be seen working.

Each fault is a list of steps (pure, testable); run_faults publishes them over real MQTT, one
connection per faulty device (its will is `offline`). Good readings are mixed in where a real
device would still send them, so a test can check that the good survive beside the bad.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from simulators.publisher import DEFAULT_PREFIX, RUN_ID, Publisher, SimClock, readings_topic, rfc3339
from simulators.road import RoadStation

DEFAULT_INTERVAL = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class FaultStep:
    """One thing a faulty device does at a simulated time: publish a payload, drop its connection, or reconnect."""

    ts: datetime
    action: str  # "publish", "drop" (no DISCONNECT: the broker publishes the will) or "reconnect"
    payload: bytes = b""
    note: str = ""  # what is wrong with it, for people reading the output


def device_id_for(kind: str) -> str:
    """The device id a fault runs as: fault-malformed-json, fault-stuck-sensor, ..."""
    return "fault-" + kind.replace("_", "-")


def _good_home(ts: datetime, i: int) -> dict[str, object]:
    return {"ts": rfc3339(ts), "values": {"temperature": round(19.0 + 0.1 * (i % 7), 2), "relative_humidity": 55.0}}


def _publish(ts: datetime, doc: object, note: str = "") -> FaultStep:
    return FaultStep(ts, "publish", orjson.dumps(doc), note)


def _raw(ts: datetime, payload: bytes, note: str) -> FaultStep:
    return FaultStep(ts, "publish", payload, note)


def malformed_json(start: datetime, count: int, interval: timedelta, now: datetime) -> list[FaultStep]:
    """Alternates good readings with payloads that are not (acceptable) JSON."""
    ts0 = rfc3339(start)
    bad = [
        (b'{"ts": "' + ts0.encode() + b'", "values": {"temperature": 20.1,', "truncated JSON"),
        (b"temperature=20.1;humidity=55", "not JSON at all"),
        (b'{"ts": "' + ts0.encode() + b'", "values": {"temperature": NaN}}', "NaN is not JSON"),
        (b'\xff\xfe{"values": {"temperature": 20}}', "not UTF-8"),
        (b"", "empty payload"),
        (b"42", "a JSON number, not an object"),
        (b"[]", "an empty array"),
        (b'{"ts": "' + ts0.encode() + b'", "values": {"temperature": 20.1,},}', "trailing commas"),
        (b"[" * 40 + b"]" * 40, "nested deeper than 32 levels"),
    ]
    steps: list[FaultStep] = []
    for i in range(count):
        ts = start + interval * i
        if i % 2 == 0:
            steps.append(_publish(ts, _good_home(ts, i), "good"))
        else:
            payload, note = bad[(i // 2) % len(bad)]
            steps.append(_raw(ts, payload, note))
    return steps


def out_of_range(start: datetime, count: int, interval: timedelta, now: datetime) -> list[FaultStep]:
    """Road readings with one physically impossible value each; the other values are good."""
    bad: list[tuple[str, object]] = [
        ("road_surface_temperature", 150.0),
        ("air_temperature", -99.0),
        ("dew_point", 95.5),
        ("relative_humidity", 140.0),
        ("battery", 250),
        ("freezing_point", 12.0),
        ("road_surface_temperature", 1e300),
    ]
    steps = []
    for i in range(count):
        ts = start + interval * i
        values: dict[str, object] = {"road_surface_temperature": 2.5, "air_temperature": 3.1, "surface_state": "dry"}
        metric, value = bad[i % len(bad)]
        values[metric] = value
        steps.append(_publish(ts, {"ts": rfc3339(ts), "values": values}, f"{metric} = {value}"))
    return steps


def wrong_types(start: datetime, count: int, interval: timedelta, now: datetime) -> list[FaultStep]:
    """Values of the wrong type, strings with units, unknown surface states, values that are not an object."""
    bad: list[tuple[object, str]] = [
        ({"temperature": "21.5C", "relative_humidity": 50.0}, "a number as a string with a unit"),
        ({"temperature": True, "relative_humidity": 50.0}, "a boolean for a number"),
        ({"surface_state": 3, "road_surface_temperature": 1.0}, "a number for a surface state"),
        ({"surface_state": "slushy", "road_surface_temperature": 1.0}, "a surface state outside the vocabulary"),
        ([20.5, 50.0], "values as an array"),
        ({"temperature": {"value": 20.5, "unit": "C"}}, "a nested object for a value"),
        ({"temperature": None, "relative_humidity": None}, "only nulls (no readings)"),
    ]
    steps = []
    for i in range(count):
        ts = start + interval * i
        values, note = bad[i % len(bad)]
        doc: dict[str, object] = {"ts": rfc3339(ts), "values": values}
        steps.append(_publish(ts, doc, note))
    # A time that is an object, not a string or a number.
    if count > len(bad):
        steps[len(bad)] = _publish(
            start + interval * len(bad), {"ts": {"when": "now"}, "values": {"temperature": 20.0}}, "ts is an object"
        )
    return steps


def future_timestamp(start: datetime, count: int, interval: timedelta, now: datetime) -> list[FaultStep]:
    """A device whose clock is wrong: far in the future, before 2000, or with no time zone; good ones between."""
    bad: list[tuple[object, str]] = [
        (rfc3339(now + timedelta(days=2)), "two days ahead"),
        (rfc3339(now + timedelta(days=366 * 3)), "three years ahead"),
        ("1970-01-01T00:00:00Z", "the epoch: a clock never set"),
        (int((now + timedelta(days=30)).timestamp() * 1000), "epoch milliseconds a month ahead"),
        ("2026-01-15T06:30:00", "no time zone"),
        ("15/01/2026 06:30", "not RFC 3339"),
    ]
    steps = []
    for i in range(count):
        ts = start + interval * i
        if i % 2 == 0:
            steps.append(_publish(ts, _good_home(ts, i), "good"))
        else:
            when, note = bad[(i // 2) % len(bad)]
            steps.append(_publish(ts, {"ts": when, "values": {"temperature": 20.0, "relative_humidity": 50.0}}, note))
    return steps


def unknown_metric(start: datetime, count: int, interval: timedelta, now: datetime) -> list[FaultStep]:
    """Known metrics beside ones Placewatch has never heard of (or spelled differently)."""
    extras: list[dict[str, object]] = [
        {"radiation_level": 3.2},
        {"Temperature": 20.1},
        {"humidity": 55.0},
        {"co2_ppm": 612},
        {"temp_f": 68.0},
    ]
    steps = []
    for i in range(count):
        ts = start + interval * i
        values: dict[str, object] = {"temperature": 19.5, "relative_humidity": 58.0}
        values.update(extras[i % len(extras)])
        steps.append(
            _publish(ts, {"ts": rfc3339(ts), "values": values}, f"unknown {next(iter(extras[i % len(extras)]))}")
        )
    return steps


def stuck_sensor(start: datetime, count: int, interval: timedelta, now: datetime) -> list[FaultStep]:
    """A road station whose surface sensor repeats the same value for hours while the air changes."""
    station = RoadStation("freezes_at_0200", seed="fault-stuck")
    stuck = round(station.road_surface_temperature(start), 2)
    steps = []
    for i in range(count):
        ts = start + interval * i
        v = station.values_at(ts)
        v["road_surface_temperature"] = stuck
        steps.append(_publish(ts, {"ts": rfc3339(ts), "values": v}, f"RST stuck at {stuck}"))
    return steps


def miswired(start: datetime, count: int, interval: timedelta, now: datetime) -> list[FaultStep]:
    """A road station reporting the air temperature as the road surface temperature (as two Seattle stations do)."""
    station = RoadStation("dry_cold", seed="fault-miswired")
    steps = []
    for i in range(count):
        ts = start + interval * i
        v = station.values_at(ts)
        v["road_surface_temperature"] = v["air_temperature"]
        steps.append(_publish(ts, {"ts": rfc3339(ts), "values": v}, "RST equals air temperature"))
    return steps


def offline_and_back(start: datetime, count: int, interval: timedelta, now: datetime) -> list[FaultStep]:
    """Readings, then the connection drops without DISCONNECT (the will says offline), then it comes back."""
    half = max(1, count // 2)
    steps = [_publish(start + interval * i, _good_home(start + interval * i, i), "good") for i in range(half)]
    gone = start + interval * half
    steps.append(FaultStep(gone, "drop", note="connection lost: broker publishes the will 'offline'"))
    back = gone + interval * 3
    steps.append(FaultStep(back, "reconnect", note="back: retained 'online'"))
    for i in range(count - half):
        ts = back + interval * i
        steps.append(_publish(ts, _good_home(ts, half + i), "good"))
    return steps


FAULTS: dict[str, Callable[[datetime, int, timedelta, datetime], list[FaultStep]]] = {
    "malformed_json": malformed_json,
    "out_of_range": out_of_range,
    "wrong_types": wrong_types,
    "future_timestamp": future_timestamp,
    "unknown_metric": unknown_metric,
    "stuck_sensor": stuck_sensor,
    "miswired": miswired,
    "offline_and_back": offline_and_back,
}


def fault_steps(
    kind: str,
    *,
    start: datetime,
    count: int = 12,
    interval: timedelta = DEFAULT_INTERVAL,
    now: datetime | None = None,
) -> list[FaultStep]:
    """The steps of one faulty device; `now` anchors the far-future timestamps (default: the wall clock)."""
    if kind not in FAULTS:
        raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULTS)}")
    return FAULTS[kind](start, count, interval, now or datetime.now(UTC))


def run_fault(
    kind: str,
    mqtt_url: str,
    *,
    protocol: str = "5",
    start: datetime,
    speed: float = 0.0,
    count: int = 12,
    interval: timedelta = DEFAULT_INTERVAL,
    prefix: str = DEFAULT_PREFIX,
    stop: threading.Event | None = None,
    offline_seconds: float = 2.0,
    log: Callable[[str], None] | None = None,
) -> int:
    """Run one faulty device over MQTT; returns the messages it published. Offline lasts at least offline_seconds."""
    device = device_id_for(kind)
    topic = readings_topic(device, prefix)
    steps = fault_steps(kind, start=start, count=count, interval=interval)

    def connect() -> Publisher:
        return Publisher(
            mqtt_url, protocol=protocol, client_id=f"pw-sim-{device}-{RUN_ID}", device_id=device, prefix=prefix
        ).connect()

    pub = connect()
    clock = SimClock(start, speed)
    sent = 0
    dropped_at = 0.0
    try:
        for step in steps:
            if not clock.wait_until(step.ts, stop):
                break
            if step.action == "publish":
                pub.publish(topic, step.payload)
                sent += 1
            elif step.action == "drop":
                pub.flush(10)
                pub.drop()
                dropped_at = time.monotonic()
            elif step.action == "reconnect":
                left = offline_seconds - (time.monotonic() - dropped_at)
                if left > 0:
                    if stop is not None:
                        if stop.wait(left):
                            break
                    else:
                        time.sleep(left)
                pub = connect()
            if log is not None:
                log(f"{device} {rfc3339(step.ts)} {step.action} {step.note}")
    finally:
        pub.close()
    return sent


def run_faults(
    mqtt_url: str,
    *,
    protocol: str = "5",
    kinds: Iterable[str] | None = None,
    start: datetime | None = None,
    speed: float = 0.0,
    count: int = 12,
    interval: timedelta = DEFAULT_INTERVAL,
    prefix: str = DEFAULT_PREFIX,
    stop: threading.Event | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Run several faulty devices at once (one thread and connection each); messages published per fault."""
    chosen = list(kinds) if kinds else list(FAULTS)
    for k in chosen:
        if k not in FAULTS:
            raise ValueError(f"unknown fault {k!r}; one of {', '.join(FAULTS)}")
    if start is None:
        # End about now: every good reading must be in the past, or ingest refuses it as from the future.
        now = datetime.now(UTC).replace(microsecond=0)
        span = max(
            max((s.ts for s in fault_steps(k, start=now, count=count, interval=interval)), default=now) - now
            for k in chosen
        )
        start = now if speed == 1 else now - span - interval
    results: dict[str, int] = {}
    errors: list[str] = []

    def one(kind: str) -> None:
        try:
            results[kind] = run_fault(
                kind,
                mqtt_url,
                protocol=protocol,
                start=start,
                speed=speed,
                count=count,
                interval=interval,
                prefix=prefix,
                stop=stop,
                log=log,
            )
        except Exception as exc:  # keep the other devices going; report at the end
            errors.append(f"{kind}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=one, args=(k,), name=f"fault-{k}", daemon=True) for k in chosen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors))
    return results
