"""The demo: a simulated device for every road station and home sensor of a registry (what `make run` starts).

Each device picks its scenario from `properties.simulate` (a road scenario or home profile, or
"off"), else its home's `simulate`, else deterministically from its id. Each runs in its own
thread with its own MQTT connection (will: offline), first publishing recent history (roads a
day, homes a week, so charts and the weekly damp rules have data at once), then live.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.registry import parse_registry
from simulators.home import DEFAULT_INTERVAL as HOME_INTERVAL
from simulators.home import PROFILES, HomeSensor, profile_for
from simulators.publisher import DEFAULT_PREFIX, RUN_ID, Publisher, floor_time, run_device
from simulators.road import BIRMINGHAM, SCENARIOS, RoadStation, scenario_for
from simulators.road import DEFAULT_INTERVAL as ROAD_INTERVAL

log = logging.getLogger(__name__)

ROAD_BACKFILL = timedelta(hours=24)
HOME_BACKFILL = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class DemoDevice:
    """One simulated device of the demo and what it simulates."""

    id: str
    kind: str  # road_station or home_sensor
    scenario: str  # road scenario or home profile
    interval: timedelta
    room: str | None = None
    lat: float | None = None
    lon: float | None = None


def demo_devices(registry_path: str | os.PathLike[str]) -> list[DemoDevice]:
    """The devices a registry file asks the demo to simulate, with their scenarios (checked)."""
    reg = parse_registry(Path(registry_path).read_text(encoding="utf-8"))
    homes = {h.id: h for h in reg.homes}
    out: list[DemoDevice] = []
    for d in reg.devices:
        wanted = d.properties.get("simulate")
        lon = lat = None
        if d.geometry and d.geometry.get("type") == "Point":
            lon, lat = d.geometry["coordinates"][:2]
        if d.kind == "road_station":
            scenario = wanted if isinstance(wanted, str) else scenario_for(d.id)
            if scenario == "off":
                continue
            if scenario not in SCENARIOS:
                raise ValueError(f"{d.id}: simulate {scenario!r} is not a road scenario ({', '.join(SCENARIOS)})")
            interval = timedelta(seconds=d.expected_interval_s) if d.expected_interval_s else ROAD_INTERVAL
            out.append(DemoDevice(d.id, d.kind, scenario, interval, lat=lat, lon=lon))
        elif d.kind == "home_sensor":
            home = homes.get(d.home or "")
            if not isinstance(wanted, str) and home is not None:
                wanted = home.properties.get("simulate")
            profile = wanted if isinstance(wanted, str) else profile_for(d.id)
            if profile == "off":
                continue
            if profile not in PROFILES:
                raise ValueError(f"{d.id}: simulate {profile!r} is not a home profile ({', '.join(PROFILES)})")
            interval = timedelta(seconds=d.expected_interval_s) if d.expected_interval_s else HOME_INTERVAL
            out.append(DemoDevice(d.id, d.kind, profile, interval, room=d.room or "living room"))
    return out


def _connect(mqtt_url: str, protocol: str, device: str, prefix: str, stop: threading.Event) -> Publisher | None:
    """Connect as the device, retrying while the broker starts; None if stopped first."""
    delay = 1.0
    while not stop.is_set():
        try:
            # No publish timeout: while the broker is away paho reconnects and resends; `stop` ends the wait.
            return Publisher(
                mqtt_url,
                protocol=protocol,
                client_id=f"pw-sim-{device}-{RUN_ID}",
                device_id=device,
                prefix=prefix,
                timeout=None,
                stop=stop,
            ).connect()
        except (ConnectionError, OSError) as exc:
            log.warning("simulator %s: %s; retrying in %.0f s", device, exc, delay)
            stop.wait(delay)
            delay = min(delay * 2, 30.0)
    return None


def run_demo(
    mqtt_url: str,
    protocol: str = "5",
    registry_path: str | os.PathLike[str] = "registry/demo.geojson",
    speed: float = 1.0,
    stop_event: threading.Event | None = None,
    *,
    start: datetime | None = None,
    backfill: bool = True,
    prefix: str = DEFAULT_PREFIX,
) -> int:
    """Simulate every road station and home sensor of the registry until stop_event is set; returns messages sent.

    speed 1 is real time from now. Faster runs start a day in the past (unless `start` is given) and
    slow to real time when they catch up with the wall clock, so no reading is from the future.
    """
    stop = stop_event or threading.Event()
    devices = demo_devices(registry_path)
    now = datetime.now(UTC)
    if start is None:
        start = now if speed == 1 else now - timedelta(days=1)
    counts: dict[str, int] = {}
    log.info(
        "simulating %d devices from %s at %gx: %s",
        len(devices),
        registry_path,
        speed,
        ", ".join(f"{d.id}={d.scenario}" for d in devices),
    )

    def one(d: DemoDevice) -> None:
        first = floor_time(start, d.interval)
        if d.kind == "road_station":
            lat, lon = (d.lat, d.lon) if d.lat is not None and d.lon is not None else BIRMINGHAM
            road = RoadStation(d.scenario, seed=d.id, lat=float(lat), lon=float(lon))
            values_at = road.values_at
            history = ROAD_BACKFILL if backfill else timedelta(0)
        else:
            history = HOME_BACKFILL if backfill else timedelta(0)
            # Origin two weeks back: damp has built up by now, and a gappy sensor's missing week is
            # the week of history (days 7-14 after its origin), so it is back live at once.
            home = HomeSensor(d.scenario, room=d.room or "living room", seed=d.id, origin=first - timedelta(days=14))
            values_at = home.values_at  # type: ignore[assignment]
        pub = _connect(mqtt_url, protocol, d.id, prefix, stop)
        if pub is None:
            return
        try:
            counts[d.id] = run_device(
                pub,
                d.id,
                values_at,
                start=first,
                interval=d.interval,
                speed=speed,
                stop=stop,
                backfill=history,
                not_ahead_of_wall_clock=True,
            )
        except Exception:  # one broken device must not end the demo
            log.exception("simulator %s stopped", d.id)
        finally:
            try:
                pub.close()
            except Exception:  # pragma: no cover - best effort on shutdown
                log.debug("simulator %s: close failed", d.id, exc_info=True)

    threads = [threading.Thread(target=one, args=(d,), name=f"sim-{d.id}", daemon=True) for d in devices]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads) and not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        stop.set()
    stop.set()
    for t in threads:
        t.join(timeout=15)
    total = sum(counts.values())
    log.info("simulators stopped after %d messages", total)
    return total
