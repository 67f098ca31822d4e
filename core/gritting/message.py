"""The duty officer's one-line summary of tonight's decisions, times in Europe/London."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from core.gritting._text import G_M2, grams, hm, temp
from core.gritting.decision import SEVERITY, Decision
from core.gritting.vocab import ACTION_INSTRUCTIONS, GrittingAction

_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def format_message(decisions: Iterable[Decision]) -> str:
    """One line per kind of treatment, e.g. 'Precautionary salt, routes P1-P12, 10 g/m2 dry, start 19:00, ...'."""
    groups: dict[tuple[object, ...], list[Decision]] = {}
    for d in decisions:
        groups.setdefault((d.action, d.spread_rate_g_m2, d.passes, d.spread_type), []).append(d)
    if not groups:
        return "No routes to report."
    ordered = sorted(groups.values(), key=lambda g: (-SEVERITY[g[0].action], _route_sort_key(g[0].route_id)))
    return " | ".join(_segment(g) for g in ordered)


def _segment(group: Sequence[Decision]) -> str:
    first = group[0]
    ids = [d.route_id for d in group]
    parts = [
        ACTION_INSTRUCTIONS[GrittingAction(first.action)],
        f"{'route' if len(ids) == 1 else 'routes'} {route_ranges(ids)}",
    ]
    if first.spread_rate_g_m2 is not None:
        rate = f"{grams(first.spread_rate_g_m2)} {G_M2}"
        if first.passes > 1:
            rate = f"{first.passes} x {rate}"
        parts.append(f"{rate} {first.spread_type}")
    if any(d.late for d in group):
        parts.append("LATE, call out now")
    starts = [d.start_by for d in group if d.start_by is not None]
    completes = [d.complete_by for d in group if d.complete_by is not None]
    if starts:
        parts.append(f"start {hm(min(starts))}")
    if completes:
        parts.append(f"complete by {hm(min(completes))}")
    text = ", ".join(parts)
    coldest = min((d for d in group if d.min_rst is not None), key=lambda d: d.min_rst or 0.0, default=None)
    tail: list[str] = []
    if coldest is not None and coldest.min_rst is not None:
        at = f" at {hm(coldest.min_rst_at)}" if coldest.min_rst_at is not None else ""
        tail.append(f"minimum road surface temperature {temp(coldest.min_rst)}{at}")
    hazards = list(dict.fromkeys(d.hazard for d in group if d.hazard))
    tail.extend(hazards)
    if first.action == "monitor" and any(d.rule == "no_data" for d in group):
        tail.append("no recent station readings")
    return f"{text}; {', '.join(tail)}" if tail else text


def _route_sort_key(route_id: str) -> tuple[str, int, str]:
    m = _NUMBERED.match(route_id)
    return (m.group(1), int(m.group(2)), route_id) if m else (route_id, -1, route_id)


def route_ranges(route_ids: Iterable[str]) -> str:
    """Route ids as people write them: 'P1-P12, S3' for P1..P12 and S3 (runs of three or more)."""
    ids = sorted(set(route_ids), key=_route_sort_key)
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) >= 3:
            out.append(f"{run[0]}-{run[-1]}")
        else:
            out.extend(run)
        run.clear()

    for rid in ids:
        if run:
            prev, cur = _NUMBERED.match(run[-1]), _NUMBERED.match(rid)
            if not (prev and cur and prev.group(1) == cur.group(1) and int(cur.group(2)) == int(prev.group(2)) + 1):
                flush()
        run.append(rid)
    flush()
    return ", ".join(out)
