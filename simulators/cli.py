"""`placewatch simulate ...`: road, home, fleet, faults, replay-seattle, replay-glasgow, demo."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from simulators.faults import FAULTS
from simulators.home import PROFILES
from simulators.publisher import DEFAULT_PREFIX, RUN_ID
from simulators.road import SCENARIOS

DEMO_REGISTRY = Path(__file__).resolve().parent.parent / "registry" / "demo.geojson"
LOCAL_ZONE = "Europe/London"
_SHIFT_HELP = "move the data in time so its earliest reading is at this time (default: keep the recorded times)"


def parse_start(text: str) -> datetime:
    """An ISO 8601 time; without a zone it is Europe/London wall time."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--start {text!r} is not an ISO 8601 time (e.g. 2026-01-15T18:00)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(LOCAL_ZONE))
    return dt.astimezone(UTC)


def _speed(text: str) -> float:
    v = float(text)
    if v < 0:
        raise argparse.ArgumentTypeError("--speed must be 0 (as fast as possible) or positive")
    return v


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return v


def _common(p: argparse.ArgumentParser, *, speed: float, start_help: str | None = None) -> None:
    p.add_argument(
        "--speed",
        type=_speed,
        default=speed,
        help=f"simulated seconds per real second; 0 = as fast as possible (default {speed:g})",
    )
    p.add_argument(
        "--start", type=parse_start, help=start_help or "simulated start time, ISO 8601 (no zone: Europe/London)"
    )
    p.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"topic prefix (default {DEFAULT_PREFIX})")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `simulate` command and its modes to an argparse subparsers object."""
    sim: argparse.ArgumentParser = subparsers.add_parser("simulate", help="simulated devices publishing over real MQTT")
    modes = sim.add_subparsers(dest="sim_mode", required=True, metavar="MODE")

    road = modes.add_parser("road", help="one road weather station running a scenario")
    _common(road, speed=1.0)
    road.add_argument("--device", default="rws-sim-1", help="device id (default rws-sim-1)")
    road.add_argument("--scenario", choices=sorted(SCENARIOS), default="freezes_at_0200")
    road.add_argument("--count", type=_positive_int, help="readings to send (default: until Ctrl-C)")
    road.add_argument("--interval", type=_positive_int, default=600, help="seconds between readings (default 600)")
    road.add_argument("--freezing-point", action="store_true", help="also report freezing_point when wet")
    road.add_argument("--lat", type=float, default=52.48, help="latitude for day length (default Birmingham)")
    road.add_argument("--lon", type=float, default=-1.90)
    road.add_argument("--seed", default=None, help="noise seed (default: the device id)")
    road.add_argument("--backfill-hours", type=float, default=0.0, help="first publish this much history at once")
    road.add_argument("--quiet", action="store_true", help="do not print each reading")

    home = modes.add_parser("home", help="one indoor temperature/humidity sensor with a household profile")
    _common(home, speed=1.0)
    home.add_argument("--device", default="home-sim-1", help="device id (default home-sim-1)")
    home.add_argument("--scenario", "--profile", dest="scenario", choices=sorted(PROFILES), default="typical")
    home.add_argument("--room", default="living room", help="bedroom, living room, kitchen or bathroom")
    home.add_argument("--count", type=_positive_int, help="readings to send (default: until Ctrl-C)")
    home.add_argument("--interval", type=_positive_int, default=300, help="seconds between readings (default 300)")
    home.add_argument("--seed", default=None, help="noise seed (default: the device id)")
    home.add_argument("--backfill-hours", type=float, default=0.0, help="first publish this much history at once")
    home.add_argument("--quiet", action="store_true", help="do not print each reading")

    fleet = modes.add_parser("fleet", help="many devices at a rate over several processes (benchmarks)")
    fleet.add_argument("--count", type=int, default=200_000, help="messages in total (default 200,000)")
    fleet.add_argument("--devices", type=_positive_int, default=100, help="devices fleet-00001... (default 100)")
    fleet.add_argument("--rate", type=float, default=0.0, help="messages per second in total; 0 = as fast as possible")
    fleet.add_argument("--processes", type=_positive_int, default=2, help="publishing processes (default 2)")
    fleet.add_argument("--readings-per-message", type=_positive_int, default=1, help="readings per message (array)")
    fleet.add_argument("--interval", type=_positive_int, default=60, help="seconds between a device's readings")
    fleet.add_argument("--start", type=parse_start, help="first reading time (default: so the last is about now)")
    fleet.add_argument("--window", type=_positive_int, default=100, help="unacknowledged messages per connection")
    fleet.add_argument("--qos", type=int, choices=(0, 1), default=1)
    fleet.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"topic prefix (default {DEFAULT_PREFIX})")
    fleet.add_argument("--json", action="store_true", help="print the result as JSON")

    faults = modes.add_parser("faults", help="faulty devices: bad JSON, bad values, bad clocks, stuck, offline")
    _common(faults, speed=0.0)
    faults.add_argument("--fault", action="append", choices=sorted(FAULTS), help="which (repeatable; default all)")
    faults.add_argument("--count", type=_positive_int, default=12, help="steps per faulty device (default 12)")
    faults.add_argument("--interval", type=_positive_int, default=600, help="simulated seconds between steps")

    sea = modes.add_parser("replay-seattle", help="replay Seattle road weather stations (Feb 2020)")
    _common(sea, speed=0.0, start_help=_SHIFT_HELP)
    sea.add_argument("--csv", type=Path, help="the CSV (default: the shared data directory)")
    sea.add_argument("--limit", type=int, help="publish only the first N messages")
    sea.add_argument("--order", choices=("file", "time"), help="file order, or by time (default: file at speed 0)")
    sea.add_argument("--registry-out", type=Path, help="write a registry GeoJSON of the stations here first")

    gla = modes.add_parser("replay-glasgow", help="replay Glasgow homes (summer 2023)")
    _common(gla, speed=0.0, start_help=_SHIFT_HELP)
    gla.add_argument("--files", type=Path, nargs="+", help="BL007-*.csv files (default: the shared data directory)")
    gla.add_argument("--limit", type=int, help="publish only the first N messages")
    gla.add_argument("--patch", default="glasgow", help="patch for the generated registry (default glasgow)")
    gla.add_argument("--registry-out", type=Path, help="write a registry GeoJSON of the homes here first")

    demo = modes.add_parser("demo", help="every road station and home sensor of a registry, continuously")
    _common(demo, speed=1.0)
    demo.add_argument("--registry", type=Path, default=DEMO_REGISTRY, help="registry GeoJSON (default the demo)")
    demo.add_argument("--no-backfill", action="store_true", help="do not publish the last day/week first")
    return sim


def _print_reading(device: str) -> Any:
    def show(ts: datetime, values: Any) -> None:
        local = ts.astimezone(ZoneInfo(LOCAL_ZONE)).strftime("%Y-%m-%d %H:%M %Z")
        print(f"{device} {local} {json.dumps(values)}", flush=True)

    return show


def _write_registry(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"registry with {len(doc['features'])} features written to {path}", flush=True)


def run(args: argparse.Namespace, *, mqtt_url: str, protocol: str) -> int:
    """Run the chosen simulate mode against the broker; 0 on success, 1 when the broker cannot be used."""
    stop = threading.Event()
    try:
        return _run(args, mqtt_url=mqtt_url, protocol=protocol, stop=stop)
    except KeyboardInterrupt:
        stop.set()
        print("stopped", file=sys.stderr)
        return 0
    except (ConnectionError, TimeoutError) as exc:
        print(f"placewatch simulate: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"placewatch simulate: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, *, mqtt_url: str, protocol: str, stop: threading.Event) -> int:
    mode = args.sim_mode
    if mode in ("road", "home"):
        return _run_one(args, mqtt_url=mqtt_url, protocol=protocol, stop=stop)
    if mode == "fleet":
        from simulators.fleet import run_fleet

        result = run_fleet(
            mqtt_url,
            protocol=protocol,
            devices=args.devices,
            count=args.count,
            rate=args.rate,
            processes=args.processes,
            readings_per_message=args.readings_per_message,
            start=args.start,
            interval=timedelta(seconds=args.interval),
            prefix=args.prefix,
            window=args.window,
            qos=args.qos,
        )
        if args.json:
            print(
                json.dumps(
                    {
                        "messages": result.messages,
                        "acked": result.acked,
                        "readings": result.readings,
                        "seconds": round(result.seconds, 3),
                        "rate": round(result.rate, 1),
                        "readings_rate": round(result.readings_rate, 1),
                        "devices": result.devices,
                        "processes": result.processes,
                        "readings_per_message": result.readings_per_message,
                        "first_ts": result.first_ts.isoformat(),
                        "last_ts": result.last_ts.isoformat(),
                    }
                )
            )
        else:
            print(result.summary())
        return 0 if result.acked == result.messages else 1
    if mode == "faults":
        from simulators.faults import run_faults

        lock = threading.Lock()

        def log(line: str) -> None:
            with lock:
                print(line, flush=True)

        counts = run_faults(
            mqtt_url,
            protocol=protocol,
            kinds=args.fault,
            start=args.start,
            speed=args.speed,
            count=args.count,
            interval=timedelta(seconds=args.interval),
            prefix=args.prefix,
            stop=stop,
            log=log,
        )
        for kind, n in sorted(counts.items()):
            print(f"{kind}: {n} messages")
        return 0
    if mode == "replay-seattle":
        from simulators import replay as rp

        path = args.csv or rp.default_seattle_csv()
        if args.registry_out:
            _write_registry(args.registry_out, rp.registry_for_seattle(path))
        order = args.order or ("file" if args.speed == 0 else "time")
        messages = rp.seattle_messages(path, limit=args.limit, order=order)
        if args.start is not None:
            messages = rp.shifted(messages, args.start)
        return _replay(messages, args, mqtt_url=mqtt_url, protocol=protocol, stop=stop)
    if mode == "replay-glasgow":
        from simulators import replay as rp

        files = args.files or rp.default_glasgow_files()
        if not files:
            raise ValueError(f"no BL007-*.csv files under {rp.data_dir()}")
        if args.registry_out:
            _write_registry(args.registry_out, rp.registry_for_glasgow(files, patch=args.patch))
        messages = rp.glasgow_messages(files, limit=args.limit)
        if args.start is not None:
            messages = rp.shifted(messages, args.start)
        return _replay(messages, args, mqtt_url=mqtt_url, protocol=protocol, stop=stop)
    if mode == "demo":
        from simulators.demo import run_demo

        if args.start is not None and args.start > datetime.now(UTC):
            raise ValueError("--start must not be in the future (ingest refuses readings from the future)")
        print(f"demo devices from {args.registry} at {args.speed:g}x; Ctrl-C stops", flush=True)
        total = run_demo(
            mqtt_url,
            protocol,
            args.registry,
            args.speed,
            stop,
            start=args.start,
            backfill=not args.no_backfill,
            prefix=args.prefix,
        )
        print(f"{total} messages")
        return 0
    raise ValueError(f"unknown simulate mode {mode!r}")


def _run_one(args: argparse.Namespace, *, mqtt_url: str, protocol: str, stop: threading.Event) -> int:
    from simulators.home import HomeSensor
    from simulators.publisher import Publisher, default_start, run_device
    from simulators.road import RoadStation

    interval = timedelta(seconds=args.interval)
    start = args.start or default_start(args.speed, interval, args.count)
    seed = args.seed if args.seed is not None else args.device
    if args.sim_mode == "road":
        model = RoadStation(args.scenario, seed=seed, lat=args.lat, lon=args.lon, freezing_point=args.freezing_point)
        values_at: Any = model.values_at
    else:
        home = HomeSensor(args.scenario, room=args.room, seed=seed, origin=start)
        values_at = home.values_at
    pub = Publisher(
        mqtt_url,
        protocol=protocol,
        client_id=f"pw-sim-{args.device}-{RUN_ID}",
        device_id=args.device,
        prefix=args.prefix,
        timeout=None,  # ride out broker restarts: paho reconnects and resends
        stop=stop,
    ).connect()
    print(f"{args.device}: {args.sim_mode} {args.scenario} from {start.isoformat()} at {args.speed:g}x", flush=True)
    try:
        n = run_device(
            pub,
            args.device,
            values_at,
            start=start,
            interval=interval,
            speed=args.speed,
            count=args.count,
            stop=stop,
            backfill=timedelta(hours=args.backfill_hours),
            on_message=None if args.quiet else _print_reading(args.device),
        )
    finally:
        pub.close()
    print(f"{args.device}: {n} messages", flush=True)
    return 0


def _replay(
    messages: list[Any], args: argparse.Namespace, *, mqtt_url: str, protocol: str, stop: threading.Event
) -> int:
    from simulators.replay import replay

    devices = len({m.device_id for m in messages})
    print(f"replaying {len(messages):,} messages from {devices} devices at {args.speed:g}x", flush=True)

    def progress(done: int, total: int) -> None:
        print(f"  {done:,} / {total:,}", flush=True)

    t0 = time.monotonic()
    n = replay(
        messages, mqtt_url, protocol=protocol, speed=args.speed, prefix=args.prefix, stop=stop, progress=progress
    )
    dt = time.monotonic() - t0
    print(f"published {n:,} messages in {dt:.1f} s ({n / dt if dt > 0 else 0:,.0f}/s), all acknowledged", flush=True)
    return 0
