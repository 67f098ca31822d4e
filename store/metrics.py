"""Figures for /metrics, read from the database: cheap queries only (estimates where a count would scan).

Tables other parts of Placewatch may not have created yet (gritting, damp, notifications) are looked up
with to_regclass first, and every figure is read in its own savepoint: one that fails is left out, never
the whole scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from store import forecasts
from store.migrate import engine

log = logging.getLogger("placewatch.store.metrics")
EXACT_BELOW = 100_000  # rows: under this (estimated) a table is counted exactly
STATEMENT_TIMEOUT_MS = 5000


@dataclass
class Figures:
    """What the database says; None where the table (or the figure) is not available."""

    readings: int | None = None
    dead_letters: int | None = None
    dead_letters_last_hour: int | None = None
    late_windows: int | None = None
    devices: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, status) -> count
    device_problems: dict[str, int] = field(default_factory=dict)  # open problems by code
    decisions: dict[tuple[str, str], int] | None = None  # (action, status) -> count
    cases: dict[tuple[str, str], int] | None = None  # (level, status) -> count
    deliveries: dict[tuple[str, str], int] | None = None  # (channel, status) -> count
    failed: list[str] = field(default_factory=list)  # figures that could not be read


@contextmanager
def bounded(conn: psycopg.Connection) -> Iterator[None]:
    """A transaction in which each statement stops after STATEMENT_TIMEOUT_MS: a scrape cannot hold the database."""
    with conn.transaction():
        conn.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
        yield


def forecast_figures(conn: psycopg.Connection, *, now: datetime, max_age_hours: float) -> dict[str, Any]:
    """store.forecasts.forecast_figures, read within the scrape's statement timeout."""
    with bounded(conn):
        return forecasts.forecast_figures(conn, now=now, max_age_hours=max_age_hours)


def estimate_rows(conn: psycopg.Connection, table: str) -> int | None:
    """Rows in one of our tables: exact when small, else the statistics' live-row count (no scan)."""
    if not _exists(conn, table):
        return None
    if table == "readings" and engine(conn) == "timescale":
        # A hypertable's rows live in its chunks: each chunk's live-row count, which follows inserts within seconds
        # as on plain PostgreSQL, and for a compressed chunk the rows it was compressed from. (TimescaleDB's
        # approximate_row_count reads reltuples, which stays 0 until a chunk is analysed: 100,000 for any count.)
        estimate = conn.execute(
            """SELECT sum(coalesce(z.numrows_pre_compression, s.n_live_tup, 0))::bigint
               FROM _timescaledb_catalog.hypertable h
               JOIN _timescaledb_catalog.chunk c ON c.hypertable_id = h.id
               LEFT JOIN _timescaledb_catalog.compression_chunk_size z ON z.chunk_id = c.id
               LEFT JOIN pg_stat_user_tables s ON s.relid = format('%I.%I', c.schema_name, c.table_name)::regclass
               WHERE h.schema_name = current_schema() AND h.table_name = 'readings'"""
        ).fetchone()[0]  # type: ignore[index]
    else:
        # n_live_tup follows inserts and deletes within seconds, analysed or not.
        row = conn.execute("SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = to_regclass(%s)", (table,))
        found = row.fetchone()
        estimate = found[0] if found else None
    if estimate is not None and estimate >= EXACT_BELOW:
        return int(estimate)
    # Small: count, reading at most the threshold's worth of rows (statistics that lag cannot make it scan more).
    counted = int(
        conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT %s) t",
            (EXACT_BELOW,),
        ).fetchone()[0]  # type: ignore[index]
    )
    return counted if counted < EXACT_BELOW else max(counted, int(estimate or 0))


def _exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]  # type: ignore[index,no-any-return]


def _columns(conn: psycopg.Connection, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        (table,),
    ).fetchall()
    return {r[0] for r in rows}


def _grouped(conn: psycopg.Connection, table: str, a: str, b: str) -> dict[tuple[str, str], int] | None:
    """count(*) grouped by two columns, or None when the table or a column is missing."""
    if not _exists(conn, table) or not {a, b} <= _columns(conn, table):
        return None
    rows = conn.execute(f"SELECT {a}::text, {b}::text, count(*) FROM {table} GROUP BY 1, 2").fetchall()
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


def figures(conn: psycopg.Connection, *, now: datetime, default_interval_s: int, stale_factor: float) -> Figures:
    """Read every figure; each in a savepoint, with a statement timeout so a scrape cannot hold the database."""
    out = Figures()

    def readings() -> None:
        out.readings = estimate_rows(conn, "readings")

    def dead() -> None:
        out.dead_letters = estimate_rows(conn, "dead_letters")
        out.dead_letters_last_hour = conn.execute(
            "SELECT count(*) FROM dead_letters WHERE received_at > %s", (now - timedelta(hours=1),)
        ).fetchone()[0]  # type: ignore[index]

    def late() -> None:
        out.late_windows = conn.execute("SELECT count(*) FROM late_windows").fetchone()[0]  # type: ignore[index]

    def devices() -> None:
        # The rule of core.devices.device_status, in SQL so a scrape does not fetch every device.
        rows = conn.execute(
            """SELECT kind,
                      CASE WHEN status = 'offline' THEN 'offline'
                           WHEN ds.last_seen IS NULL THEN 'stale'
                           WHEN %(now)s - ds.last_seen > make_interval(
                                secs => coalesce(expected_interval_s, %(interval)s) * %(factor)s) THEN 'stale'
                           ELSE 'online' END,
                      count(*)
               FROM devices d JOIN device_seen ds USING (id) GROUP BY 1, 2""",
            {"now": now, "interval": default_interval_s, "factor": stale_factor},
        ).fetchall()
        out.devices = {(str(r[0]), str(r[1])): int(r[2]) for r in rows}

    def problems() -> None:
        if _exists(conn, "device_problems"):
            rows = conn.execute(
                "SELECT code, count(*) FROM device_problems WHERE closed_at IS NULL GROUP BY 1"
            ).fetchall()
            out.device_problems = {str(r[0]): int(r[1]) for r in rows}

    def decisions() -> None:
        out.decisions = _grouped(conn, "gritting_decisions", "action", "status")

    def cases() -> None:
        out.cases = _grouped(conn, "damp_cases", "level", "status")

    def deliveries() -> None:
        for table in ("notification_deliveries", "deliveries"):
            found = _grouped(conn, table, "channel", "status")
            if found is not None:
                out.deliveries = found
                return

    steps: dict[str, Callable[[], None]] = {
        "readings": readings,
        "dead_letters": dead,
        "late_windows": late,
        "devices": devices,
        "device_problems": problems,
        "decisions": decisions,
        "cases": cases,
        "deliveries": deliveries,
    }
    with bounded(conn):
        for name, step in steps.items():
            try:
                with conn.transaction():
                    step()
            except psycopg.Error as exc:
                log.warning("metrics: could not read %s (%s)", name, str(exc).strip())
                out.failed.append(name)
    return out
