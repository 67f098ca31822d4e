"""The season report's what-if (DOMAIN.md section 5): the same nights under another gritting policy.

The nowcast is replayed over the period as the system would have run it (core.gritting.backtest.replay: at each
issue time only what was known then) at the evening issue hours ISSUE_HOURS, local time, with its projected
minimum road surface temperature over the next HORIZON_H hours (from 17:00 that reaches 05:00, from 23:00
11:00: the end of the gritting night). For each route and night (core.season's nights, noon to noon):

- **covered**: a station of the route has at least one projection at an issue hour of the night and readings
  in the night. Nights not covered count for neither policy: they are reported as not covered, never as quiet.
- policy P **treats** when, at any issue hour, any station of the route has a projected minimum at or below P's
  trigger (below it when the trigger is not inclusive);
- **ice risk** as the season report decides it (core.season.station_nights: a station of the route read at
  or below 0 °C during the night);
- **missed**: ice risk and P did not treat; **needless**: P treated and there was no ice risk.

treatments_saved = treated(in force) - treated(other); misses_added = missed(other) - missed(in force). Salt: each
treated route-night at the policy's precautionary rate (the warmest row of its spread matrix, dry or damp road,
its spread type: the rate most call-outs use; a simplification) x the route's length x the treated width, as
core.season estimates a run's salt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from core import season
from core.gritting._text import temp
from core.gritting.backtest import Replay
from core.gritting.policy import GrittingPolicy

HORIZON_H = 12  # the projected minimum over the next 12 h: to 05:00 from a 17:00 issue, to 11:00 from 23:00
ISSUE_HOURS = "17-23"  # the evening's call-out hours, local time

DEFINITION = (
    "The nowcast replayed as it would have run, each evening hour from 17:00 to 23:00 local time, projecting the "
    f"lowest road surface temperature of the next {HORIZON_H} hours. A policy treats a route on a night when, at "
    "any of those hours, a station of the route is projected at or below its trigger. Ice risk as the season "
    "report counts it: a station of the route read 0 °C or below during the night. Missed: ice risk and no "
    "treatment; needless: a treatment and no ice risk. Salt: each treatment at the policy's precautionary rate "
    "(the warmest row of its spread matrix) x route length x treated width. Nights without a projection or "
    "without readings on a route are not covered and counted for neither policy."
)


@dataclass(frozen=True, slots=True)
class Side:
    """What the what-if needs of a policy: its trigger and its precautionary rate (g/m², all passes)."""

    trigger_c: float
    inclusive: bool
    rate_g_m2: float

    @classmethod
    def of(cls, policy: GrittingPolicy) -> Side:
        """A policy's trigger and the rate of the warmest row of its matrix (dry or damp road, its spread type)."""
        rate = policy.frost_bands[0].dry_damp.pick(policy.pre_wetted).total_g_m2
        return cls(policy.trigger_rst_c, policy.trigger_inclusive, rate)

    def calls(self, projected: float) -> bool:
        """True when a projected minimum meets the trigger."""
        return projected <= self.trigger_c if self.inclusive else projected < self.trigger_c

    def as_dict(self) -> dict[str, Any]:
        return {"trigger_c": self.trigger_c, "trigger_inclusive": self.inclusive, "rate_g_m2": self.rate_g_m2}


def _counts() -> dict[str, Any]:
    return {"treated": 0, "missed": 0, "needless": 0, "salt_t": 0.0}


def _row() -> dict[str, Any]:
    return {"route_nights": 0, "covered": 0, "not_covered": 0, "ice_nights": 0, "in_force": _counts(),
            "other": _counts(), "salt_unknown": False}  # fmt: skip


def _lowest_by_station_night(replay: Replay, horizon: int, zone: ZoneInfo) -> dict[tuple[str, date], float]:
    """Each station's lowest projected minimum (at `horizon`) over its issue times of each night."""
    if horizon not in replay.horizons:
        raise ValueError(f"the replay has no {horizon} h projection (it has {list(replay.horizons)})")
    k = replay.horizons.index(horizon)
    out: dict[tuple[str, date], float] = {}
    ex = replay.examples
    for sid, t, p in zip(ex.station, ex.t, replay.model[:, k], strict=True):
        if not np.isfinite(p):
            continue
        key = (str(sid), season.night_of(datetime.fromtimestamp(int(t), zone), zone))
        out[key] = min(float(p), out.get(key, float(p)))
    return out


def compare(
    routes: Sequence[season.RouteRec],
    replay: Replay,
    hours: Iterable[season.StationHour],
    *,
    in_force: Side,
    other: Side,
    start: date,
    end: date,
    zone: ZoneInfo,
    width_m: float = season.DEFAULT_TREATED_WIDTH_M,
    horizon: int = HORIZON_H,
) -> dict[str, Any]:
    """Route-nights treated, ice nights missed, needless treatments and salt under both policies, per route and in
    total (module docstring)."""
    lo, hi = season.period_bounds(start, end, zone)
    observed = season.station_nights(hours, lo=lo, hi=hi, zone=zone)
    projected = _lowest_by_station_night(replay, horizon, zone)
    n_nights = (end - start).days + 1
    total = _row()
    out_routes = []
    for route in routes:
        row = _row()
        length = season.route_length_m(route.geometry)
        for i in range(n_nights):
            night = start + timedelta(days=i)
            keys = [(s, night) for s in route.stations]
            lows = [projected[k] for k in keys if k in projected]
            row["route_nights"] += 1
            if not lows or not any(k in observed.reported for k in keys):
                row["not_covered"] += 1
                continue
            row["covered"] += 1
            ice = any(k in observed.first_ice for k in keys)
            row["ice_nights"] += int(ice)
            for name, side in (("in_force", in_force), ("other", other)):
                treats = any(side.calls(p) for p in lows)
                c = row[name]
                c["treated"] += int(treats)
                c["missed"] += int(ice and not treats)
                c["needless"] += int(treats and not ice)
                if treats:
                    salt, _ = season.run_salt(None, side.rate_g_m2, None, length, width_m)
                    if salt is None:
                        row["salt_unknown"] = True
                    else:
                        c["salt_t"] += salt
        for k in ("route_nights", "covered", "not_covered", "ice_nights"):
            total[k] += row[k]
        for name in ("in_force", "other"):
            for k in ("treated", "missed", "needless", "salt_t"):
                total[name][k] += row[name][k]
        total["salt_unknown"] |= row["salt_unknown"]
        out_routes.append(
            {
                "route_id": route.id,
                "route_name": route.name,
                "length_km": None if length is None else round(length / 1000.0, 3),
                **_finish(row),
            }
        )
    return {
        "nights": n_nights,
        "horizon_hours": horizon,
        "in_force": in_force.as_dict(),
        "other": other.as_dict(),
        "treated_width_m": width_m,
        "routes": out_routes,
        "total": _finish(total),
        "definition": DEFINITION,
    }


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    a, b = row["in_force"], row["other"]
    for c in (a, b):
        c["salt_t"] = round(c["salt_t"], 3)
    unknown = row.pop("salt_unknown")
    return row | {
        "treatments_saved": a["treated"] - b["treated"],
        "misses_added": b["missed"] - a["missed"],
        "salt_saved_t": None if unknown else round(a["salt_t"] - b["salt_t"], 3),
    }


def _n(k: int, one: str, many: str) -> str:
    return f"{k} {one if k == 1 else many}"


def words(result: dict[str, Any], *, other_name: str | None = None) -> str:
    """The result in a sentence for a duty officer: what the other policy would have changed, and what the data
    did not cover."""
    a, b, t = result["in_force"], result["other"], result["total"]
    if other_name is None and (a["trigger_inclusive"], a["rate_g_m2"]) == (b["trigger_inclusive"], b["rate_g_m2"]):
        head = f"With the trigger at {temp(b['trigger_c'])} instead of {temp(a['trigger_c'])}"
    else:
        head = (
            f"Under {other_name or 'the other policy'} (trigger {temp(b['trigger_c'])}) instead of the policy in "
            f"force (trigger {temp(a['trigger_c'])})"
        )
    if not t["covered"]:
        return (
            f"{head}: nothing to compare. None of the {_n(t['route_nights'], 'route-night', 'route-nights')} of "
            f"these {_n(result['nights'], 'night', 'nights')} has both a nowcast projection and road readings."
        )
    saved, added, salt = t["treatments_saved"], t["misses_added"], t["salt_saved_t"]
    if saved == 0:
        treat = "the same number of treatments"
    else:
        treat = _n(abs(saved), "treatment", "treatments") + (" fewer" if saved > 0 else " more")
        if salt is not None and round(abs(salt)) >= 1:
            treat += f" (about {abs(salt):.0f} t of salt {'saved' if salt > 0 else 'more'})"
        elif salt is not None:
            treat += f" (about {abs(salt):.1f} t of salt {'saved' if salt > 0 else 'more'})"
    if added == 0:
        ice = "no change in nights of ice left untreated"
    else:
        more = "more" if added > 0 else "fewer"
        ice = f"{abs(added)} {more} {'night' if abs(added) == 1 else 'nights'} of ice untreated"
    gap = ""
    if t["not_covered"]:
        gap = f" ({t['not_covered']} of {t['route_nights']} not covered: no projection or no readings)"
    covered = (
        f"over the {_n(t['covered'], 'route-night', 'route-nights')} the data covers{gap}"
        f" in these {_n(result['nights'], 'night', 'nights')}"
    )
    return f"{head} {covered}: {treat}, {ice}."
