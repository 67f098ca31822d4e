"""When a route's crew is called out, starts and finishes: worked back from T0, delayed by rain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.gritting._text import hm, minutes, temp
from core.gritting.inputs import Forecast
from core.gritting.policy import GrittingPolicy
from core.gritting.rules import Judgement
from core.gritting.vocab import TREATING


@dataclass(slots=True)
class Timing:
    """A route's call-out, start and completion times, and the sentences that explain them."""

    call_out_by: datetime | None = None
    start_by: datetime | None = None
    complete_by: datetime | None = None
    start_not_before: datetime | None = None
    trigger_at: datetime | None = None
    late: bool = False
    treat_now: bool = False  # conditions are on the road: the times follow `now`
    reasons: list[str] = field(default_factory=list)


def plan_timing(
    chosen: Judgement,
    judgements: Sequence[Judgement],
    fc: Forecast | None,
    now: datetime,
    policy: GrittingPolicy,
    treatment: int,
    mobilisation: int,
) -> Timing:
    """Work back from T0 (or treat now for conditions already on the road); flag a late decision."""
    out = Timing(trigger_at=chosen.trigger_at)
    if chosen.action not in TREATING:
        return out
    treating = [j for j in judgements if j.action in TREATING]
    d, m = timedelta(minutes=treatment), timedelta(minutes=mobilisation)
    if any(j.reactive for j in treating):
        reactive = next(j for j in treating if j.reactive)
        out.trigger_at = reactive.trigger_at
        out.treat_now = True
        out.call_out_by, out.start_by = now, now + m
        out.complete_by = out.start_by + d
        out.reasons.append(
            f"Treat now: call out at once, start by {hm(out.start_by)} ({minutes(mobilisation)} mobilisation), "
            f"complete by {hm(out.complete_by)} ({minutes(treatment)} treatment)."
        )
        return out

    timed = [j for j in treating if j.trigger_at is not None]
    event = f"the road surface temperature reaches {temp(policy.trigger_rst_c)}"
    if timed:
        first = min(timed, key=lambda j: j.trigger_at or now)
        t0 = first.trigger_at
        assert t0 is not None
        event = first.t0_words or event
        if first is not chosen and first.station_id is not None and t0 != chosen.trigger_at:
            out.reasons.append(
                f"Timing follows station {first.station_id}, which reaches the trigger first, at {hm(t0)}."
            )
    else:
        t0 = chosen.outlook.min_rst_at or now
        out.reasons.append(
            "When the road surface temperature reaches the trigger is not known: timing works back from the expected "
            f"minimum at {hm(t0)}."
        )
    out.trigger_at = t0
    margin = timedelta(minutes=policy.completion_margin_minutes)
    out.complete_by = t0 - margin
    out.start_by = out.complete_by - d
    out.call_out_by = out.start_by - m
    out.reasons.append(
        f"Timing: {event} at {hm(t0)}; complete by {hm(out.complete_by)} "
        f"({minutes(policy.completion_margin_minutes)} margin), start by {hm(out.start_by)} "
        f"({minutes(treatment)} treatment), call out by {hm(out.call_out_by)} ({minutes(mobilisation)} mobilisation)."
    )
    _rain_delay(out, fc, t0, now, policy, d, m)
    out.late = now > out.call_out_by
    if out.late:
        out.reasons.append(
            f"Late: the call-out time {hm(out.call_out_by)} has passed (now {hm(now)}): call the crew out now."
        )
    return out


def _rain_delay(
    out: Timing,
    fc: Forecast | None,
    t0: datetime,
    now: datetime,
    policy: GrittingPolicy,
    d: timedelta,
    m: timedelta,
) -> None:
    """Rain washes salt off: start once it stops, still before the freeze when possible."""
    if fc is None or fc.precipitation not in ("rain", "sleet") or out.start_by is None:
        return
    what = fc.precipitation
    start, end = fc.precipitation_start, fc.precipitation_end
    if start is not None and start > t0:
        return  # falls after the freeze: the forecast should say freezing rain if it matters
    if end is None:
        out.reasons.append(
            f"{what.capitalize()} is forecast with no end time: salt spread while it falls is washed off; "
            "check the radar before starting."
        )
        return
    if end <= now:
        return
    out.start_not_before = end
    if end <= out.start_by:
        out.reasons.append(f"{what.capitalize()} stops at {hm(end)}, before the start: no delay needed.")
        return
    out.start_by = end
    out.complete_by = end + d
    out.call_out_by = end - m
    if end < t0:
        # Starting later always finishes later than planned: say by how much it eats into the margin.
        if out.complete_by > t0:
            after = (
                f"; treatment then completes at {hm(out.complete_by)}, after the road surface temperature reaches the "
                "trigger"
            )
        else:
            after = (
                f"; treatment then completes at {hm(out.complete_by)}, inside the usual "
                f"{minutes(policy.completion_margin_minutes)} margin"
            )
        out.reasons.append(
            f"{what.capitalize()} until {hm(end)} would wash salt off: start when it stops, at {hm(end)}, still "
            f"before the road surface temperature reaches {temp(policy.trigger_rst_c)} at {hm(t0)}{after}. Call out by "
            f"{hm(out.call_out_by)}."
        )
    else:
        out.reasons.append(
            f"{what.capitalize()} continues until {hm(end)}, after the road surface temperature reaches "
            f"{temp(policy.trigger_rst_c)} at "
            f"{hm(t0)}: wet roads may freeze before salt can stay down. Start as soon as it stops, at {hm(end)}, "
            f"call out by {hm(out.call_out_by)}, and consider a higher rate."
        )
