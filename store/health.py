"""Facts for the device health check, gathered in a few set-based queries, and the problems it finds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from core.health import DeviceFacts, HealthPolicy, Problem, ProblemCode
from store.rows import typed


@dataclass(frozen=True, slots=True)
class OpenProblem:
    """An open problem of a device: its code, the sentence people read, the team that looks after the device, and
    since when."""

    device_id: str
    code: ProblemCode
    message: str
    team: str
    opened_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", ProblemCode(self.code))


def gather(conn: psycopg.Connection, policy: HealthPolicy, now: datetime) -> list[DeviceFacts]:
    """DeviceFacts for every registered device."""
    devices = conn.execute(
        """SELECT d.id, d.kind, d.status, ds.last_seen, d.expected_interval_s
           FROM devices d JOIN device_seen ds ON ds.id = d.id ORDER BY d.id"""
    ).fetchall()
    battery: dict[str, dict[str, float]] = defaultdict(dict)
    for dev, metric, value in conn.execute(
        """SELECT device_id, metric, last_value FROM series_latest
           WHERE metric IN ('battery', 'battery_voltage') AND last_value IS NOT NULL"""
    ):
        battery[dev][metric] = value
    flat: dict[str, dict[str, timedelta]] = defaultdict(dict)
    # How long each series' latest value has stood unchanged (looking back at most 3 days).
    for dev, metric, since in conn.execute(
        """SELECT s.device_id, s.metric, s.last_ts - coalesce(
                  (SELECT max(r.ts) FROM readings r WHERE r.series_id = s.id
                     AND r.ts >= s.last_ts - interval '3 days' AND r.value IS DISTINCT FROM s.last_value),
                  (SELECT min(r.ts) FROM readings r WHERE r.series_id = s.id
                     AND r.ts >= s.last_ts - interval '3 days'))
           FROM series_latest s WHERE s.metric = ANY(%s) AND s.last_ts IS NOT NULL""",
        (list(policy.max_flat),),
    ):
        if since is not None:
            flat[dev][metric] = since
    pairs: dict[str, dict[tuple[str, str], tuple[int, int]]] = defaultdict(dict)
    for a, b in policy.distinct_pairs:
        for dev, total, equal in conn.execute(
            """SELECT sa.device_id, count(*), count(*) FILTER (WHERE abs(ra.value - rb.value) < 0.001)
               FROM series_latest sa
               JOIN series sb ON sb.device_id = sa.device_id AND sb.metric = %(b)s
               JOIN readings ra ON ra.series_id = sa.id AND ra.ts > sa.last_ts - %(w)s
               JOIN readings rb ON rb.series_id = sb.id AND rb.ts = ra.ts
               WHERE sa.metric = %(a)s GROUP BY sa.device_id""",
            {"a": a, "b": b, "w": policy.pair_window},
        ):
            pairs[dev][(a, b)] = (int(equal), int(total))
    rejected: dict[str, int] = dict(
        conn.execute(
            """SELECT device_id, count(*) FROM dead_letters
               WHERE received_at > %s - interval '1 hour' AND device_id IS NOT NULL GROUP BY device_id""",
            (now,),
        ).fetchall()
    )
    accepted: dict[str, int] = (
        dict(
            conn.execute(
                """SELECT s.device_id, count(DISTINCT r.ts) FROM series s
               JOIN readings r ON r.series_id = s.id AND r.ts > %s - interval '1 hour'
               WHERE s.device_id = ANY(%s) GROUP BY s.device_id""",
                (now, list(rejected)),
            ).fetchall()
        )
        if rejected
        else {}
    )
    return [
        DeviceFacts(
            device_id=dev,
            kind=kind,
            reported_status=status,
            last_seen=last_seen,
            expected_interval_s=interval,
            battery_percent=battery[dev].get("battery"),
            battery_volts=battery[dev].get("battery_voltage"),
            flat_for=flat.get(dev, {}),
            pair_equal=pairs.get(dev, {}),
            accepted_last_hour=int(accepted.get(dev, 0)),
            rejected_last_hour=int(rejected.get(dev, 0)),
        )
        for dev, kind, status, last_seen, interval in devices
    ]


def sync(conn: psycopg.Connection, found: dict[str, list[Problem]], teams: dict[str, str], now: datetime) -> set[str]:
    """Open new problems, refresh open ones and close those gone; return the devices whose problems changed."""
    changed: set[str] = set()
    with conn.transaction():
        open_rows = conn.execute(
            "SELECT device_id, code, message FROM device_problems WHERE closed_at IS NULL FOR UPDATE"
        ).fetchall()
        current = {(d, c): m for d, c, m in open_rows}
        wanted = {(d, p.code): p.message for d, probs in found.items() for p in probs}
        for (dev, code), message in wanted.items():
            if (dev, code) not in current:
                conn.execute(
                    """INSERT INTO device_problems (device_id, code, message, team, opened_at, updated_at)
                       VALUES (%s, %s, %s, %s, %s, %s)""",
                    (dev, code, message, teams.get(dev, "admin"), now, now),
                )
                changed.add(dev)
            elif current[(dev, code)] != message:
                conn.execute(
                    """UPDATE device_problems SET message = %s, updated_at = %s
                       WHERE device_id = %s AND code = %s AND closed_at IS NULL""",
                    (message, now, dev, code),
                )
        for dev, code in current.keys() - wanted.keys():
            conn.execute(
                """UPDATE device_problems SET closed_at = %s, updated_at = %s
                   WHERE device_id = %s AND code = %s AND closed_at IS NULL""",
                (now, now, dev, code),
            )
            changed.add(dev)
    return changed


def open_problems(conn: psycopg.Connection, device_ids: list[str] | None) -> dict[str, list[OpenProblem]]:
    """Open problems per device, oldest first, of these devices (None: of every device; callers pick what they
    show)."""
    out: dict[str, list[OpenProblem]] = defaultdict(list)
    for p in typed(conn, OpenProblem).execute(
        """SELECT device_id, code, message, team, opened_at FROM device_problems
           WHERE closed_at IS NULL AND (%s::text[] IS NULL OR device_id = ANY(%s)) ORDER BY opened_at""",
        (device_ids, device_ids),
    ):
        out[p.device_id].append(p)
    return out


def owning_teams(conn: psycopg.Connection) -> dict[str, str]:
    """Which team looks after each device: highways for road stations, the home's patch for home sensors."""
    return {
        dev: ("highways" if kind == "road_station" else f"patch:{patch}" if patch else "admin")
        for dev, kind, patch in conn.execute(
            "SELECT d.id, d.kind, h.patch FROM devices d LEFT JOIN homes h ON h.id = d.home_id"
        )
    }


def pending_alerts(conn: psycopg.Connection) -> dict[str, list[int]]:
    """Devices whose open problems are not what their retained alert last told (a problem opened or closed since,
    or a publish that failed), each with the ids of its open problems now (empty: the alert is to be cleared)."""
    return {
        dev: list(ids)
        for dev, ids in conn.execute(
            """WITH cur AS (SELECT device_id, array_agg(id ORDER BY id) AS ids
                            FROM device_problems WHERE closed_at IS NULL GROUP BY device_id)
               SELECT d.id, coalesce(cur.ids, '{}'::bigint[]) FROM devices d
               LEFT JOIN cur ON cur.device_id = d.id
               LEFT JOIN device_alert_state s ON s.device_id = d.id
               WHERE coalesce(cur.ids, '{}'::bigint[]) IS DISTINCT FROM coalesce(s.published_problems, '{}'::bigint[])
               ORDER BY d.id"""
        )
    }


def mark_published(conn: psycopg.Connection, items: Iterable[tuple[str, list[int]]], *, at: datetime) -> None:
    """Remember that each device's retained alert now lists these open problems (a device gone meanwhile is
    skipped)."""
    rows = [(dev, list(ids), at, dev) for dev, ids in items]
    if not rows:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO device_alert_state (device_id, published_problems, published_at)
               SELECT %s, %s::bigint[], %s WHERE EXISTS (SELECT 1 FROM devices WHERE id = %s)
               ON CONFLICT (device_id) DO UPDATE
                 SET published_problems = excluded.published_problems, published_at = excluded.published_at""",
            rows,
        )
