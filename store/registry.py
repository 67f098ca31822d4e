"""Load a parsed registry in one transaction. Idempotent: unchanged rows are not touched."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from core.registry import Registry, RegistryError, RouteDef, unresolved


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a registry load did."""

    features: int
    changed: int
    routes: int
    devices: int
    homes: int


def load(conn: psycopg.Connection, reg: Registry, *, text: str, loaded_by: str | None = None) -> LoadResult:
    """Upsert routes, stations, homes, sensors and depots; refuse the whole file on a dangling reference."""
    changed = 0
    with conn.transaction():
        cur = conn.cursor()
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
    )


def _route_mobilisation(r: RouteDef, reg: Registry) -> int:
    if r.mobilisation_minutes is not None:
        return r.mobilisation_minutes
    for d in reg.depots:
        if d.id == r.depot:
            return d.mobilisation_minutes
    return 60


def _j(value: object) -> Jsonb | None:
    return None if value is None else Jsonb(value)


__all__ = ["LoadResult", "RegistryError", "load"]
