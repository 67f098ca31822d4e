"""State the scheduler itself keeps: the late-data windows it has taken."""

from __future__ import annotations

from datetime import datetime

import psycopg


def take_late_windows(conn: psycopg.Connection, *, limit: int = 10_000) -> list[tuple[str, datetime, datetime]]:
    """Remove and return the oldest marked late windows (device, start, end)."""
    with conn.transaction():
        rows = conn.execute(
            """DELETE FROM late_windows WHERE id IN (
                   SELECT id FROM late_windows ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
               RETURNING device_id, start_ts, end_ts""",
            (limit,),
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]
