"""The nowcast backtest (CONTRACT.md, Evaluation): re-run the projection as of each issue time using only what
was known then, including what the model had learned by then, and score it against what was observed, with
persistence and a straight-line trend scored on the same issue times in the same run.

Issue times are the whole local hours in `issue_hours` (inclusive; 17-23, or 22-2 across midnight) of each
local date from start to end, at each station with a road surface temperature in the 3 h before. For horizon H
the observed value is the minimum road surface temperature in (t, t + H], scored where every hour of the horizon
has a reading; event: observed at or below 0 C; call: projected at or below the policy's trigger.

Learning as of t: the pooled trees are the ones in force at t (the shipped default, or a refit on the store's
own nights once it has enough, at most once a day: every POOLED_REFIT_DAYS from the start, on examples whose
outcome was known by then); each station's correction comes from the daily learning at LEARN_AT_HOUR local
before t, over the station's examples whose outcome was known by then. Readings after t never reach t's
projection: the no-look-ahead test adds later readings and checks every earlier projection is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from core.gritting import learned as L
from core.timeparse import utc_z

LEARN_HOURS = L.LEARN_HOURS  # local issue hours the model learns from
LEARN_AT_HOUR = 12  # the daily learning runs at noon local (alerts/nowcast_fit.py)
POOLED_REFIT_DAYS = 28  # the pooled trees change slowly; each station's correction is relearned daily
MIN_OWN_EXAMPLES = 5000  # the store's own examples before its own pooled trees replace the shipped default
EVENT_C = 0.0


def hour_range(text: str) -> tuple[int, ...]:
    """Local hours from "17-23" (inclusive; "22-2" wraps past midnight) or "17,19,21"."""
    text = text.strip()
    try:
        if "-" in text:
            a, b = (int(p) for p in text.split("-", 1))
            if not (0 <= a <= 23 and 0 <= b <= 23):
                raise ValueError
            return tuple((a + i) % 24 for i in range(((b - a) % 24) + 1))
        hours = tuple(int(p) for p in text.split(","))
        if not hours or any(not 0 <= h <= 23 for h in hours):
            raise ValueError
        return hours
    except ValueError:
        raise ValueError(f"issue hours {text!r}: give local hours 0-23 as 17-23 or 17,19,21") from None


def local_hours_epochs(start: date, end: date, hours: Sequence[int], tz: ZoneInfo) -> np.ndarray:
    """Epoch seconds of each local whole hour in `hours` on each local date from start to end (inclusive);
    hours after midnight in a wrapping range belong to the evening before. Hours a clock change skips are left
    out; a repeated hour counts once."""
    out: set[int] = set()
    wraps = list(hours) != sorted(hours)
    d = start
    while d <= end:
        for h in hours:
            day = d + timedelta(days=1) if wraps and h < hours[0] else d
            local = datetime.combine(day, time(h), tzinfo=tz)
            back = datetime.fromtimestamp(local.timestamp(), tz)
            if back.hour == h:
                out.add(int(local.timestamp()))
        d += timedelta(days=1)
    return np.asarray(sorted(out), dtype=np.int64)


def local_hour_of(t: np.ndarray, tz: ZoneInfo) -> np.ndarray:
    """Local hour of each epoch second."""
    return np.asarray([datetime.fromtimestamp(int(x), tz).hour for x in t], dtype=np.int64)


def _day_start(t: int, tz: ZoneInfo, at_hour: int) -> int:
    """The latest local `at_hour`:00 at or before t, as epoch seconds."""
    local = datetime.fromtimestamp(int(t), tz)
    mark = datetime.combine(local.date(), time(at_hour), tzinfo=tz)
    if mark.timestamp() > t:
        mark = datetime.combine(local.date() - timedelta(days=1), time(at_hour), tzinfo=tz)
    return int(mark.timestamp())


# -------------------------------------------------------------------------------------------------- scoring


def contingency(
    projected: np.ndarray, observed: np.ndarray, trigger_c: float, inclusive: bool = True
) -> dict[str, Any]:
    """MAE, bias and the frost-call table of projected against observed minima (NaN pairs left out)."""
    ok = np.isfinite(projected) & np.isfinite(observed)
    p, o = projected[ok], observed[ok]
    event = o <= EVENT_C
    call = p <= trigger_c if inclusive else p < trigger_c
    hits = int((event & call).sum())
    misses = int((event & ~call).sum())
    fa = int((~event & call).sum())
    cn = int((~event & ~call).sum())
    return {
        "n": int(ok.sum()),
        "mae_c": _r(float(np.mean(np.abs(p - o)))) if len(p) else None,
        "bias_c": _r(float(np.mean(p - o))) if len(p) else None,
        "hits": hits,
        "misses": misses,
        "false_alarms": fa,
        "correct_negatives": cn,
        "pod": _r(hits / (hits + misses)) if hits + misses else None,
        "far": _r(fa / (hits + fa)) if hits + fa else None,
        "csi": _r(hits / (hits + misses + fa)) if hits + misses + fa else None,
    }


def _r(v: float) -> float:
    return round(v, 3)


def interpolate_horizons(values: np.ndarray, model_h: Sequence[int], wanted: Sequence[int]) -> np.ndarray:
    """(n, len(wanted)) minima at the wanted horizons, linear between the model's (never past its longest)."""
    mh = np.asarray(model_h, dtype=np.float64)
    out = np.empty((values.shape[0], len(wanted)))
    for k, h in enumerate(wanted):
        if h < mh[0] or h > mh[-1]:
            raise ValueError(f"horizon {h} h: the nowcast projects {int(mh[0])} to {int(mh[-1])} h ahead")
        j = int(np.searchsorted(mh, h))
        if mh[j] == h:
            out[:, k] = values[:, j]
        else:
            w = (h - mh[j - 1]) / (mh[j] - mh[j - 1])
            out[:, k] = values[:, j - 1] * (1 - w) + values[:, j] * w
    return out


# ------------------------------------------------------------------------------------------ learning as of t


@dataclass(frozen=True, slots=True)
class Replay:
    """Projections at each issue time as the system would have made them, with the baselines."""

    examples: L.Examples  # the scored issue times, observed minima at the wanted horizons
    horizons: tuple[int, ...]
    model: np.ndarray  # (n, len(horizons)) projected minima
    persistence: np.ndarray
    linear_trend: np.ndarray
    pooled_fits: tuple[str, ...]  # when the pooled trees were refitted on own data (ISO), in order
    stations_learning: int  # stations with their own correction at the end


def replay(
    stations: Sequence[L.Series],
    *,
    start: date,
    end: date,
    horizons: Sequence[int],
    issue_hours: Sequence[int],
    tz: ZoneInfo,
    default: L.NowcastModel,
    fit: Callable[[L.Examples, datetime], L.NowcastModel] | None = None,
) -> Replay:
    """Replay the nowcast over [start, end] (local dates) as of each issue time (module docstring)."""
    horizons = tuple(sorted(set(int(h) for h in horizons)))
    model_h = default.horizons
    interpolate_horizons(np.zeros((0, len(model_h))), model_h, horizons)  # refuses horizons beyond the model
    all_h = tuple(sorted(set(model_h) | set(horizons)))
    first = int(datetime.combine(start, time(0), tzinfo=tz).timestamp())
    last = int(datetime.combine(end + timedelta(days=2), time(0), tzinfo=tz).timestamp())
    # Learning examples: every learning hour from the first reading; scored examples: the issue hours.
    learn_parts, score_parts = [], []
    for s in stations:
        if s.empty:
            continue
        d0 = datetime.fromtimestamp(int(s.rst_t[0]), tz).date() - timedelta(days=1)
        learn_t = local_hours_epochs(d0, end, LEARN_HOURS, tz)
        learn_parts.append(L.examples(s, learn_t[learn_t <= last], model_h))
        score_parts.append(L.examples(s, local_hours_epochs(start, end, issue_hours, tz), all_h))
    learn = L.Examples.concat(learn_parts, model_h)
    scored = L.Examples.concat(score_parts, all_h)
    wanted_obs = _observed_at(scored, horizons)
    scored = scored.select(np.isfinite(wanted_obs).any(axis=1))
    wanted_obs = wanted_obs[np.isfinite(wanted_obs).any(axis=1)]

    # The pooled trees in force: the default, then a refit on the store's own examples every POOLED_REFIT_DAYS
    # once enough of them are known (an example is known when its longest horizon has passed).
    known_t = learn.t + int(model_h[-1]) * 3600
    schedule: list[tuple[int, L.NowcastModel]] = [(first, default)]
    fits: list[str] = []
    if fit is not None and len(scored):
        r = first + POOLED_REFIT_DAYS * 86400
        while r <= int(scored.t.max()):
            own = known_t <= r
            if own.sum() >= MIN_OWN_EXAMPLES:
                when = datetime.fromtimestamp(r, tz)
                schedule.append((r, fit(learn.select(own), when)))
                fits.append(utc_z(when))
            r += POOLED_REFIT_DAYS * 86400
    every_other = np.isin(local_hour_of(learn.t, tz), L.CORRECTION_HOURS)  # the hours corrections learn from
    upto = int(np.searchsorted(np.asarray(model_h), max(horizons))) + 1  # the model's horizons up to the longest wanted
    proj = np.full((len(scored), len(model_h)), np.nan)
    learning: set[str] = set()
    for i, (t0, model) in enumerate(schedule):
        t1 = schedule[i + 1][0] if i + 1 < len(schedule) else np.iinfo(np.int64).max
        sel = (scored.t < t1) & ((scored.t >= t0) if i else True)
        if not sel.any():
            continue
        part = scored.select(sel)
        recent = (learn.t < t1) & (learn.t >= (t0 if i else first) - L.LEARN_NIGHTS * 86400) & every_other
        corr = _corrections(model, learn.select(recent), part, tz, upto)
        learning |= {str(sid) for sid, c in zip(part.station, corr, strict=True) if c.any()}
        proj[sel, :upto] = part.rst[:, None] - L.pooled_drop(model, part.x, upto) + corr
    proj = np.minimum(proj[:, :upto], scored.rst[:, None] + L.MAX_RISE_C)
    proj = np.minimum.accumulate(proj, axis=1)
    model_at = interpolate_horizons(proj, model_h[:upto], horizons)
    slope = np.nan_to_num(scored.x[:, L.FEATURES.index("slope_3h")])
    persistence = np.repeat(scored.rst[:, None], len(horizons), axis=1)
    linear = scored.rst[:, None] + np.minimum(0.0, slope[:, None] * np.asarray(horizons, dtype=np.float64)[None, :])
    out = L.Examples(scored.station, scored.t, scored.x, scored.rst, wanted_obs, horizons)
    return Replay(out, horizons, model_at, persistence, linear, tuple(fits), len(learning))


def _corrections(model: L.NowcastModel, learn: L.Examples, scored: L.Examples, tz: ZoneInfo, upto: int) -> np.ndarray:
    """(n, len(model.horizons)) each scored issue's station correction, from the station's examples whose
    outcome was known by the daily learning (LEARN_AT_HOUR local) before the issue, over the LEARN_NIGHTS days
    before it: the station's mean error of `model`, shrunk by its nights n / (n + k)."""
    out = np.zeros((len(scored), upto))
    if not len(learn) or not len(scored):
        return out
    mine = np.isin(learn.station, np.unique(scored.station))
    learn = learn.select(mine)
    err = learn.observed_min[:, :upto] - (learn.rst[:, None] - L.pooled_drop(model, learn.x, upto))
    nights = L.night_of(learn.t)
    for sid in np.unique(scored.station):
        ms, ml = scored.station == sid, learn.station == sid
        if not ml.any():
            continue
        cut = np.asarray([_day_start(int(t), tz, LEARN_AT_HOUR) for t in scored.t[ms]], dtype=np.int64)
        for j, h in enumerate(model.horizons[:upto]):
            e = err[ml, j]
            ok = np.isfinite(e)
            kt = learn.t[ml][ok] + int(h) * 3600
            o = np.argsort(kt, kind="stable")
            kt, e_s, n_s = kt[o], e[ok][o], nights[ml][ok][o]
            csum = np.r_[0.0, np.cumsum(e_s)]
            _, first_idx = np.unique(n_s, return_index=True)
            first_seen = np.zeros(len(n_s), dtype=np.int64)
            first_seen[first_idx] = 1
            ncum = np.r_[0, np.cumsum(first_seen)]
            k = np.searchsorted(kt, cut, side="right")
            k0 = np.searchsorted(kt, cut - L.LEARN_NIGHTS * 86400, side="right")
            mean = (csum[k] - csum[k0]) / np.maximum(k - k0, 1)
            n_nights = ncum[k] - ncum[k0]  # nights are in known-time order: first sightings count them
            out[ms, j] = n_nights / (n_nights + model.shrink_nights) * mean
    return out


def _observed_at(ex: L.Examples, wanted: Sequence[int]) -> np.ndarray:
    """Observed minima at the wanted horizons (the examples were computed with them)."""
    out = np.full((len(ex), len(wanted)), np.nan)
    for k, h in enumerate(wanted):
        out[:, k] = ex.observed_min[:, ex.horizons.index(h)]
    return out


def evaluation(r: Replay, trigger_c: float, inclusive: bool = True) -> dict[str, Any]:
    """The answer of GET /api/v1/evaluation/nowcast for a replay."""
    horizons = []
    for k, h in enumerate(r.horizons):
        obs = r.examples.observed_min[:, k]
        row = {"hours": h, **contingency(r.model[:, k], obs, trigger_c, inclusive)}
        row["baselines"] = {
            "persistence": contingency(r.persistence[:, k], obs, trigger_c, inclusive),
            "linear_trend": contingency(r.linear_trend[:, k], obs, trigger_c, inclusive),
        }
        row["ceiling"] = contingency(obs, obs, trigger_c, inclusive)
        horizons.append(row)
    return {
        "stations": len(np.unique(r.examples.station)),
        "issues": len(r.examples),
        "trigger_c": trigger_c,
        "horizons": horizons,
    }


def empty_evaluation(horizons: Sequence[int], trigger_c: float) -> dict[str, Any]:
    """An evaluation with nothing to score (no readings in the period)."""
    e = np.zeros(0)
    table = contingency(e, e, trigger_c)
    return {
        "stations": 0,
        "issues": 0,
        "trigger_c": trigger_c,
        "horizons": [
            {
                "hours": h,
                **table,
                "baselines": {"persistence": dict(table), "linear_trend": dict(table)},
                "ceiling": dict(table),
            }
            for h in horizons
        ],
    }
