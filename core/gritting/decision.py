"""A gritting decision as recorded and shown: what to do, at what rate, when, and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from core.gritting.policy import SpreadType
from core.gritting.vocab import SEVERITY, Action
from core.jsonready import json_ready

# The words are core.gritting.vocab's; Action and SEVERITY are named here too for the modules that import them
# with Decision.
__all__ = ["SEVERITY", "Action", "Decision", "Wetness"]

Wetness = Literal["dry_damp", "wet"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What a route needs tonight, when, and the sentences that justify it to a duty officer."""

    route_id: str
    action: Action
    rule: str  # machine id of the deciding rule, e.g. "wet_road_below_trigger"
    decided_at: datetime
    spread_rate_g_m2: float | None = None  # per pass; None when nothing is to be spread (or escalated)
    passes: int = 1
    spread_type: SpreadType = "dry"
    road_wetness: Wetness = "dry_damp"
    call_out_by: datetime | None = None
    start_by: datetime | None = None
    complete_by: datetime | None = None
    start_not_before: datetime | None = None  # rain washes salt off: do not start before it stops
    trigger_at: datetime | None = None  # T0: when RST is expected to reach the trigger
    worst_station: str | None = None
    min_rst: float | None = None
    min_rst_at: datetime | None = None
    hazard: str | None = None  # a few words for the message, e.g. "hoar frost likely"
    reasons: tuple[str, ...] = ()
    confidence: float = 0.0
    horizon_hours: float = 0.0  # how far ahead the decision rests on a nowcast; 0 on observations or a forecast
    # Until when the station readings and the forecast it rests on cover the road (None: nothing ahead). Not part
    # of material_key: it moves on with every evaluation.
    covered_until: datetime | None = None
    late: bool = False
    # Conditions are on the road now: call out at once. The times then follow `now`, so they are not
    # part of material_key (else every re-evaluation of an icy road would issue a "new" decision).
    treat_now: bool = False
    material_rounding_minutes: int = 15

    def material_key(self) -> tuple[object, ...]:
        """The fields whose change makes a new decision; times rounded so jitter does not re-issue it."""
        times: tuple[object, ...]
        if self.treat_now:
            times = ("now",)  # "treat now" stays the same instruction while `now` moves on
        else:
            times = (
                _round_time(self.call_out_by, self.material_rounding_minutes),
                _round_time(self.start_by, self.material_rounding_minutes),
                _round_time(self.complete_by, self.material_rounding_minutes),
            )
        return (self.route_id, self.action, self.spread_rate_g_m2, self.passes, self.spread_type, *times)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready values: times as core.timeparse.utc_z writes them, lists for tuples."""
        out: dict[str, object] = json_ready(self)
        return out


def _round_time(dt: datetime | None, step_minutes: int) -> datetime | None:
    if dt is None:
        return None
    step = step_minutes * 60
    seconds = (dt - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=round(seconds / step) * step)
