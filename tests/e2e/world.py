"""Real data for the page and authorisation tests: a registry loaded by the store, readings written through
the store's writer (the path ingest uses), and decisions and cases made by the real evaluators, run in the test
with a real alert publisher on a topic prefix of the test's own."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerts.context import AlertContext
from alerts.damp import DampEvaluator
from alerts.gritting import GrittingEvaluator
from alerts.publisher import AlertPublisher
from core.model import Reading
from placewatch.settings import Settings
from simulators.home import HomeSensor
from simulators.road import RoadStation
from store.db import connect, open_pool
from store.migrate import engine
from store.registry import forget_readings as forget
from store.writer import Batch, Writer
from tests.helpers import load

LONDON = ZoneInfo("Europe/London")
ROOMS = ("bedroom", "living room")
STEP = timedelta(minutes=10)  # road stations
HOME_STEP = timedelta(minutes=30)  # home sensors: enough for hourly judgements, and a light load on a shared database


def home(hid: str, patch: str, address: str, lon: float, lat: float) -> dict[str, Any]:
    """A home feature with its own place and address."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"kind": "home", "id": hid, "address": address, "patch": patch},
    }


def room_sensors(hid: str) -> list[dict[str, Any]]:
    """A sensor in each room of the home (ids like 'uprn-x/bedroom': a '/' in a device id, as in Zigbee2MQTT)."""
    return [
        {
            "type": "Feature",
            "geometry": None,
            "properties": {"kind": "home_sensor", "id": f"{hid}/{room}", "home": hid, "room": room},
        }
        for room in ROOMS
    ]


def station(dev: str, lon: float, lat: float, name: str) -> dict[str, Any]:
    """A named road station."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"kind": "road_station", "id": dev, "name": name},
    }


def route(rid: str, name: str, stations: list[str], coordinates: list[list[list[float]]]) -> dict[str, Any]:
    """A route drawn as a MultiLineString (two carriageways, say)."""
    return {
        "type": "Feature",
        "geometry": {"type": "MultiLineString", "coordinates": coordinates},
        "properties": {
            "kind": "route",
            "id": rid,
            "name": name,
            "priority": 1,
            "treatment_minutes": 150,
            "stations": stations,
        },
    }


def home_readings(hid: str, profile: str, start: datetime, end: datetime) -> list[Reading]:
    """The home simulator's temperature and humidity for each room, every 30 minutes from start to end."""
    out: list[Reading] = []
    for room in ROOMS:
        dev = f"{hid}/{room}"
        model = HomeSensor(profile, room=room, seed=dev, origin=start)
        t = start
        while t < end:
            values = model.values_at(t)
            if values is not None:
                out += [Reading(dev, m, t, float(values[m])) for m in ("temperature", "relative_humidity")]
            t += HOME_STEP
    return out


def steady_readings(hid: str, start: datetime, end: datetime, temperature: float, humidity: float) -> list[Reading]:
    """A cold but not humid home: the same small daily swing in each room."""
    out: list[Reading] = []
    for i, room in enumerate(ROOMS):
        dev = f"{hid}/{room}"
        t = start
        while t < end:
            swing = 0.6 if t.astimezone(LONDON).hour in range(18, 22) else 0.0
            out.append(Reading(dev, "temperature", t, temperature + swing - 0.3 * i))
            out.append(Reading(dev, "relative_humidity", t, humidity - 2 * swing))
            t += HOME_STEP
    return out


def station_readings(dev: str, scenario: str, sim_now: datetime, real_now: datetime) -> list[Reading]:
    """Six hours of a road scenario ending at sim_now, replayed to end at real_now (as the gritting tests do)."""
    model = RoadStation(scenario, seed=0)
    out: list[Reading] = []
    for k in range(36, -1, -1):
        t = real_now - k * STEP
        for metric, v in model.values_at(sim_now - k * STEP).items():
            if isinstance(v, str):
                out.append(Reading(dev, metric, t, None, v))
            else:
                out.append(Reading(dev, metric, t, float(v)))  # type: ignore[arg-type]
    return out


def write(dsn: str, readings: Sequence[Reading]) -> None:
    """Store readings through the writer ingest uses (hourly rollup and latest values included)."""
    with connect(dsn, autocommit=True) as conn:
        w = Writer(conn, engine=engine(conn))
        for i in range(0, len(readings), 20_000):
            chunk = list(readings[i : i + 20_000])
            seen: dict[str, datetime] = {}
            for r in chunk:
                seen[r.device_id] = max(r.ts, seen.get(r.device_id, r.ts))
            w.write(Batch(readings=chunk, seen=seen))


def forget_readings(dsn: str, device_ids: Iterable[str]) -> None:
    """Delete these devices' readings (and their hourly rollup) once a module is done with them, so that the run's
    shared database stays as small as the other tests expect."""
    ids = sorted(set(device_ids))
    with connect(dsn, autocommit=True) as conn:
        series = [r[0] for r in conn.execute("SELECT id FROM series WHERE device_id = ANY(%s)", (ids,))]
        forget(conn, series)


def winter_evening(day: int, hour: int) -> datetime:
    """A January evening of the road scenarios, Europe/London, as UTC."""
    return datetime(2026, 1, day, hour, 0, tzinfo=LONDON).astimezone(UTC)


@dataclass
class Evaluators:
    """The real gritting and damp evaluators with a pool and a publisher of the test's own."""

    settings: Settings
    pool: Any
    publisher: AlertPublisher
    damp: DampEvaluator
    gritting: GrittingEvaluator

    def ctx(self, now: datetime | None = None) -> AlertContext:
        """An evaluator context at `now` (default: the real clock)."""
        ctx = AlertContext(settings=self.settings, pool=self.pool, publisher=self.publisher)
        if now is not None:
            ctx.now = lambda: now
        return ctx

    def judge_homes(self, device_ids: Iterable[str], now: datetime | None = None) -> None:
        """Judge the homes of these sensors, opening cases where the rules say so."""
        self.damp.on_readings(self.ctx(now), sorted(device_ids))

    def judge_late(self, windows: list[tuple[str, datetime, datetime]], now: datetime) -> None:
        """Judge homes whose readings arrived late, as the evaluator does when they do."""
        self.damp.on_late(self.ctx(now), windows)

    def decide(self, route_ids: Sequence[str]) -> list[int]:
        """Decide these routes now; the ids of the decisions stored."""
        return self.gritting.evaluate(self.ctx(), list(route_ids))


@contextmanager
def evaluators(dsn: str, mqtt_broker: Any, prefix: str) -> Iterator[Evaluators]:
    """Evaluators publishing their retained alerts under `prefix` (cleared again afterwards)."""
    settings = Settings(
        database_url=dsn, mqtt_url=mqtt_broker.url, mqtt_protocol=mqtt_broker.protocol, topic_prefix=prefix
    )
    pool = open_pool(dsn, max_size=2)
    pub = AlertPublisher(mqtt_broker.url, protocol=mqtt_broker.protocol, prefix=prefix)
    published: list[tuple[str, str]] = []
    real_publish = pub.publish

    def remembering(kind: str, ident: str, body: Any, **kw: Any) -> bool:
        published.append((kind, ident))
        return real_publish(kind, ident, body, **kw)

    pub.publish = remembering  # type: ignore[method-assign]
    try:
        yield Evaluators(
            settings,
            pool,
            pub,
            DampEvaluator(settings, housekeeping_s=0),
            # The world replays an evening onto the real clock: the learned nowcast would read the
            # real hour (a morning run says monitor), so the pages are shown on the physics nowcast.
            GrittingEvaluator(settings, learned_nowcast=False),
        )
    finally:
        for kind, ident in sorted(set(published)):
            real_publish(kind, ident, None)  # leave the broker clean
        pub.close()
        pool.close()


def load_features(dsn: str, *features: dict[str, Any]) -> None:
    """Load features into the registry (the store's loader, as `placewatch registry load` does)."""
    load(dsn, *features)


@dataclass
class Town:
    """The e2e world: one patch of six homes (an overdue red case, a red case, watch, three green; five with
    readings this week), a patch of one home, and a route with a station whose road is freezing tonight."""

    uid: str
    patch: str
    small_patch: str
    homes: dict[str, str]  # label -> home id
    addresses: dict[str, str]
    places: dict[str, tuple[float, float]]
    station: str
    route: str
    decision_id: int
    cases: dict[str, int]

    @property
    def devices(self) -> list[str]:
        """Every device of the town: the station and each home's room sensors."""
        return [self.station] + [f"{hid}/{room}" for hid in self.homes.values() for room in ROOMS]


def build_town(dsn: str, mqtt_broker: Any, uid: str) -> Town:
    """Load, write and judge the e2e world; about ten seconds."""
    patch, small = f"knowle-west-{uid}", f"hartcliffe-{uid}"
    labels = {"late": patch, "red": patch, "watch": patch, "green1": patch, "green2": patch, "green3": patch}
    labels["other"] = small
    homes = {k: f"uprn-{uid}-{k}" for k in labels}
    addresses = {k: f"{10 + i} Mould Lane, Bristol BS4 {i}QT" for i, k in enumerate(labels)}
    # Places no station or route shares, with six decimals: easy to look for in what the public gets.
    places = {k: (round(-2.581234 - 0.001113 * i, 6), round(51.421987 + 0.000917 * i, 6)) for i, k in enumerate(labels)}
    dev, rid = f"rws-{uid}", f"A4174-{uid}"
    features = [
        station(dev, -2.5712, 51.4301, f"Airport Road {uid}"),
        route(
            rid,
            f"Ring road {uid}",
            [dev],
            [
                [[-2.6301, 51.4102], [-2.6005, 51.4188], [-2.5712, 51.4301], [-2.5402, 51.4366]],
                [[-2.5712, 51.4301], [-2.5655, 51.4489], [-2.5588, 51.4602]],
            ],
        ),
    ]
    for k, hid in homes.items():
        features.append(home(hid, labels[k], addresses[k], *places[k]))
        features += room_sensors(hid)
    load_features(dsn, *features)

    now = datetime.now(UTC).replace(microsecond=0)
    week_and_a_half = now - timedelta(days=10)
    readings: list[Reading] = []
    readings += home_readings(homes["red"], "cold_damp", week_and_a_half, now)
    readings += steady_readings(homes["watch"], week_and_a_half, now, temperature=16.0, humidity=55.0)
    for k in ("green1", "green2", "green3", "other"):
        readings += home_readings(homes[k], "warm_dry", week_and_a_half, now)
    # The late home's readings are from three weeks ago, arriving now (a gateway that was offline).
    late_end = (now - timedelta(days=21)).replace(minute=0, second=0)
    late_start = late_end - timedelta(days=10)
    late = home_readings(homes["late"], "cold_damp", late_start, late_end)
    readings += late
    readings += station_readings(dev, "freezes_at_0200", winter_evening(14, 21), now)
    write(dsn, readings)

    with evaluators(dsn, mqtt_broker, f"pw-test-{uid}/v1") as ev:
        ev.judge_late([(f"{homes['late']}/{room}", late_start, late_end) for room in ROOMS], late_end)
        ev.judge_homes(f"{homes[k]}/{room}" for k in homes if k != "late" for room in ROOMS)
        decisions = ev.decide([rid])
    with connect(dsn) as conn:
        cases = dict(
            conn.execute(
                "SELECT home_id, id FROM damp_cases WHERE home_id = ANY(%s) AND closed_at IS NULL",
                (list(homes.values()),),
            ).fetchall()
        )
    by_home = {v: k for k, v in homes.items()}
    return Town(
        uid=uid,
        patch=patch,
        small_patch=small,
        homes=homes,
        addresses=addresses,
        places=places,
        station=dev,
        route=rid,
        decision_id=decisions[-1],
        cases={by_home[h]: c for h, c in cases.items()},
    )
