"""The outstanding-steps rule has one definition (core.cases.STEPS): store.damp.NEXT_DUE, the SQL made from it, gives
on the real PostgreSQL the soonest deadline core.cases.outstanding gives in Python, case by case."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.cases import STEPS, outstanding, overdue_steps
from store.damp import NEXT_DUE

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
# Every column the rule reads: each step's deadline and the columns that mark it done, and when the case closed.
COLUMNS = sorted({due for _, due, _ in STEPS} | {col for _, _, done in STEPS for col in done} | {"closed_at"})


def _cases(seed: int, n: int) -> list[dict[str, Any]]:
    """Cases with each column set or not at random (deadlines spread so any step can be the soonest)."""
    r = random.Random(seed)
    out = []
    for _ in range(n):
        case = {col: T0 + timedelta(hours=r.randrange(-2000, 2000)) if r.random() < 0.5 else None for col in COLUMNS}
        if r.random() < 0.7:
            case["closed_at"] = None
        out.append(case)
    # Every step alone outstanding, and a case with nothing left.
    for _, due, _ in STEPS:
        out.append(dict.fromkeys(COLUMNS) | {due: T0})
    out.append(dict.fromkeys(COLUMNS))
    return out


def _sql_next_due(db: Any, cases: list[dict[str, Any]]) -> list[datetime | None]:
    arrays = ", ".join("%s::timestamptz[]" for _ in COLUMNS)
    rows = db.execute(
        f"""SELECT {NEXT_DUE} FROM unnest({arrays}) WITH ORDINALITY AS c({", ".join(COLUMNS)}, ord)
            ORDER BY c.ord""",
        [[case[col] for case in cases] for col in COLUMNS],
    ).fetchall()
    return [row[0] for row in rows]


def test_next_due_in_sql_is_the_soonest_outstanding_step_in_python(db) -> None:
    cases = _cases(15, 600)
    got = _sql_next_due(db, cases)
    want = [steps[0][1] if (steps := outstanding(case)) else None for case in cases]
    assert got == want
    assert sum(d is not None for d in want) > 100  # the random cases do exercise the rule
    # And a case is overdue in SQL (NEXT_DUE < now) exactly when Python finds a step overdue.
    assert [d is not None and d < T0 for d in got] == [bool(overdue_steps(case, T0)) for case in cases]


def test_next_due_reads_the_columns_of_damp_cases(db) -> None:
    db.execute(f"SELECT {NEXT_DUE} FROM damp_cases c LIMIT 0").fetchall()
