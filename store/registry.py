"""Load a parsed registry in one transaction. Idempotent: unchanged rows are not touched.

With `prune`, what the database holds and the file no longer lists goes in the same transaction: routes,
road stations and home sensors that came from a registry (with their readings), and homes (with their derived
damp assessments) unless a damp case rests on them. With `dry_run`, the whole load runs and is rolled back:
the result says what would change and what would go.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import psycopg
from psycopg.types.json import Jsonb

from core.registry import Registry, RegistryError, RouteDef, unresolved


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a registry load did (or, with dry_run, would do)."""

    features: int
    changed: int
    routes: int
    devices: int
    homes: int
    dry_run: bool = False
    removed: dict[str, list[str]] = field(default_factory=dict)  # "routes", "devices", "homes" -> ids gone
    kept: list[str] = field(default_factory=list)  # what the prune left, and why
    orphaned: list[str] = field(default_factory=list)  # what points at something gone, in words


class _DryRun(Exception):
    """Raised inside the load's transaction to roll it back after a dry run."""


def load(
    conn: psycopg.Connection,
    reg: Registry,
    *,
    text: str,
    loaded_by: str | None = None,
    prune: bool = False,
    dry_run: bool = False,
) -> LoadResult:
    """Upsert routes, stations, homes, sensors and depots (and with prune, remove what the file no longer
    lists); refuse the whole file on a dangling reference. dry_run: do it all, report, roll back."""
    box: list[LoadResult] = []
    try:
        with conn.transaction():
            box.append(_load(conn, reg, text=text, loaded_by=loaded_by, prune=prune, dry_run=dry_run))
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return box[0]


def _load(
    conn: psycopg.Connection, reg: Registry, *, text: str, loaded_by: str | None, prune: bool, dry_run: bool
) -> LoadResult:
    changed = 0
    cur = conn.cursor()
    if prune:  # what the file does not name is about to go: references must resolve within the file
        stations: set[str] = set()
        homes: set[str] = set()
    else:
        stations = {r[0] for r in cur.execute("SELECT id FROM devices WHERE kind = 'road_station'")}
        homes = {r[0] for r in cur.execute("SELECT id FROM homes")}
    depots = {r[0] for r in cur.execute("SELECT id FROM depots")}
    err = unresolved(reg, stations=stations, homes=homes, depots=depots)
    if err is not None:
        raise err
    for d in reg.depots:
        cur.execute(
            """INSERT INTO depots (id, name, mobilisation_minutes, geometry) VALUES (%s, %s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                 mobilisation_minutes = excluded.mobilisation_minutes, geometry = excluded.geometry
               WHERE (depots.name, depots.mobilisation_minutes, depots.geometry)
                 IS DISTINCT FROM (excluded.name, excluded.mobilisation_minutes, excluded.geometry)""",
            (d.id, d.name, d.mobilisation_minutes, _j(d.geometry)),
        )
        changed += cur.rowcount
    for h in reg.homes:
        cur.execute(
            """INSERT INTO homes (id, address, patch, geometry, outdoor, properties)
               VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET address = excluded.address, patch = excluded.patch,
                 geometry = excluded.geometry, outdoor = excluded.outdoor, properties = excluded.properties
               WHERE (homes.address, homes.patch, homes.geometry, homes.outdoor, homes.properties)
                 IS DISTINCT FROM (excluded.address, excluded.patch, excluded.geometry, excluded.outdoor,
                                   excluded.properties)""",
            (h.id, h.address, h.patch, _j(h.geometry), h.outdoor, Jsonb(h.properties)),
        )
        changed += cur.rowcount
    for d in reg.devices:
        cur.execute(
            """INSERT INTO devices (id, kind, name, model, format, home_id, room, expected_interval_s,
                                    geometry, properties, source)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'registry')
               ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, model = excluded.model,
                 format = excluded.format, home_id = excluded.home_id, room = excluded.room,
                 expected_interval_s = excluded.expected_interval_s, geometry = excluded.geometry,
                 properties = excluded.properties, source = 'registry', updated_at = now()
               WHERE (devices.kind, devices.name, devices.model, devices.format, devices.home_id, devices.room,
                      devices.expected_interval_s, devices.geometry, devices.properties, devices.source)
                 IS DISTINCT FROM (excluded.kind, excluded.name, excluded.model, excluded.format,
                      excluded.home_id, excluded.room, excluded.expected_interval_s, excluded.geometry,
                      excluded.properties, 'registry')""",
            (
                d.id,
                d.kind,
                d.name,
                d.model,
                d.format,
                d.home,
                d.room,
                d.expected_interval_s,
                _j(d.geometry),
                Jsonb(d.properties),
            ),
        )
        changed += cur.rowcount
    for r in reg.routes:
        cur.execute(
            """INSERT INTO routes (id, name, priority, treatment_minutes, mobilisation_minutes, depot,
                                   geometry, properties)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET name = excluded.name, priority = excluded.priority,
                 treatment_minutes = excluded.treatment_minutes,
                 mobilisation_minutes = excluded.mobilisation_minutes, depot = excluded.depot,
                 geometry = excluded.geometry, properties = excluded.properties
               WHERE (routes.name, routes.priority, routes.treatment_minutes, routes.mobilisation_minutes,
                      routes.depot, routes.geometry, routes.properties)
                 IS DISTINCT FROM (excluded.name, excluded.priority, excluded.treatment_minutes,
                      excluded.mobilisation_minutes, excluded.depot, excluded.geometry, excluded.properties)""",
            (
                r.id,
                r.name,
                r.priority,
                r.treatment_minutes,
                _route_mobilisation(r, reg),
                r.depot,
                _j(r.geometry),
                Jsonb(r.properties),
            ),
        )
        changed += cur.rowcount
        cur.execute(
            "DELETE FROM route_stations WHERE route_id = %s AND NOT (device_id = ANY(%s))",
            (r.id, list(r.stations)),
        )
        changed += cur.rowcount
        cur.execute(
            """INSERT INTO route_stations (route_id, device_id) SELECT %s, unnest(%s::text[])
               ON CONFLICT DO NOTHING""",
            (r.id, list(r.stations)),
        )
        changed += cur.rowcount
    removed: dict[str, list[str]] = {}
    kept: list[str] = []
    orphaned: list[str] = []
    if prune:
        removed, kept, orphaned = _prune(conn, reg)
        changed += sum(len(v) for v in removed.values())
    if changed:
        cur.execute(
            "INSERT INTO registry_loads (sha256, features, changed, loaded_by) VALUES (%s, %s, %s, %s)",
            (hashlib.sha256(text.encode()).hexdigest(), reg.size, changed, loaded_by),
        )
        cur.execute("SELECT pg_notify('placewatch_registry', %s)", (str(changed),))
    return LoadResult(
        features=reg.size,
        changed=changed,
        routes=len(reg.routes),
        devices=len(reg.devices),
        homes=len(reg.homes),
        dry_run=dry_run,
        removed=removed,
        kept=kept,
        orphaned=orphaned,
    )


def _prune(conn: psycopg.Connection, reg: Registry) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """Remove what the file no longer lists; return (removed ids by group, kept with why, orphans in words)."""
    route_ids = [r.id for r in reg.routes]
    device_ids = [d.id for d in reg.devices]
    home_ids = [h.id for h in reg.homes]
    kept: list[str] = []
    orphaned: list[str] = []
    routes = [r[0] for r in conn.execute("SELECT id FROM routes WHERE id <> ALL(%s) ORDER BY id", (route_ids,))]
    if routes:
        n = conn.execute("SELECT count(*) FROM gritting_decisions WHERE route_id = ANY(%s)", (routes,)).fetchone()
        if n and n[0]:
            orphaned.append(f"{n[0]} gritting decision(s) of removed routes stay as the record, with no route to show")
        conn.execute("DELETE FROM routes WHERE id = ANY(%s)", (routes,))
    homes = [r[0] for r in conn.execute("SELECT id FROM homes WHERE id <> ALL(%s) ORDER BY id", (home_ids,))]
    if homes:
        with_cases = conn.execute(
            "SELECT home_id, count(*) FROM damp_cases WHERE home_id = ANY(%s) GROUP BY 1 ORDER BY 1", (homes,)
        ).fetchall()
        for hid, n in with_cases:
            kept.append(f"home {hid!r} stays: {n} damp case(s) rest on it (the evidence is kept)")
        gone_homes = sorted(set(homes) - {r[0] for r in with_cases})
        for name, role in conn.execute(
            "SELECT name, role FROM users WHERE home_id = ANY(%s) ORDER BY name", (gone_homes,)
        ).fetchall():
            orphaned.append(f"user {name!r} ({role}) is linked to removed home, so sees no home")
        homes = gone_homes
    # Devices of the registry only (auto-registered ones are not the file's to remove), and the sensors of
    # homes that go, even if the file still lists them under another home.
    devices = [
        r[0]
        for r in conn.execute(
            """SELECT id FROM devices WHERE source = 'registry' AND kind IN ('road_station', 'home_sensor')
                 AND (id <> ALL(%s) OR (kind = 'home_sensor' AND home_id = ANY(%s))) ORDER BY id""",
            (device_ids, homes),
        )
    ]
    if devices:
        series = [r[0] for r in conn.execute("SELECT id FROM series WHERE device_id = ANY(%s)", (devices,))]
        n = conn.execute("SELECT count(*) FROM readings WHERE series_id = ANY(%s)", (series,)).fetchone()
        if n and n[0]:
            orphaned.append(f"{n[0]} reading(s) of removed devices go with them")
        forget_readings(conn, series)
        conn.execute("DELETE FROM devices WHERE id = ANY(%s)", (devices,))
    if homes:
        conn.execute("DELETE FROM damp_home_state WHERE home_id = ANY(%s)", (homes,))
        conn.execute("DELETE FROM damp_assessments WHERE home_id = ANY(%s)", (homes,))
        conn.execute("DELETE FROM homes WHERE id = ANY(%s)", (homes,))
    removed = {k: v for k, v in (("routes", routes), ("devices", devices), ("homes", homes)) if v}
    return removed, kept, orphaned


def _route_mobilisation(r: RouteDef, reg: Registry) -> int:
    if r.mobilisation_minutes is not None:
        return r.mobilisation_minutes
    for d in reg.depots:
        if d.id == r.depot:
            return d.mobilisation_minutes
    return 60


def _j(value: object) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def describe(result: LoadResult, *, name: str) -> str:
    """What a load did (or would do), in lines a person reads."""
    lines = [
        f"{name}: {result.features} features ({result.routes} routes, {result.devices} devices, "
        f"{result.homes} homes); {result.changed} changes{' (dry run: nothing changed)' if result.dry_run else ''}"
    ]
    gone = "would remove" if result.dry_run else "removed"
    for group, ids in result.removed.items():
        lines.append(f"{name}: {gone} {len(ids)} {group}: {', '.join(ids)}")
    lines += [f"{name}: {k}" for k in result.kept]
    lines += [f"{name}: {'would be ' if result.dry_run else ''}orphaned: {o}" for o in result.orphaned]
    return "\n".join(lines)


def forget_readings(conn: psycopg.Connection, series: list[int]) -> None:
    """Delete these series' readings and everything made of them: packed days and, on plain PostgreSQL, the closed
    hours of the hourly rollup (the hours after its watermark are read from the readings, migration 0027).
    TimescaleDB's continuous aggregate follows the readings itself."""
    conn.execute("DELETE FROM readings WHERE series_id = ANY(%s)", (series,))
    conn.execute("DELETE FROM hourly_days WHERE series_id = ANY(%s)", (series,))
    if conn.execute("SELECT to_regclass('readings_hourly_closed') IS NOT NULL").fetchone() == (True,):
        conn.execute("DELETE FROM readings_hourly_closed WHERE series_id = ANY(%s)", (series,))


__all__ = ["LoadResult", "RegistryError", "describe", "forget_readings", "load"]
