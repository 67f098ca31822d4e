"""How good the nowcast's calls are: the backtest over stored readings (CONTRACT.md, Evaluation).

`GET /api/v1/evaluation/nowcast?start=2025-10-01&end=2025-10-26&horizons=3,6&issue_hours=17-23&tz=America/Denver`
(admin, highways) replays the nowcast at each issue time with only what was known then and scores it, with
persistence and a straight-line trend on the same issue times (alerts.nowcast_backtest, which
`placewatch backtest gritting` prints too).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from alerts import nowcast_backtest as nb
from api.deps import Conn, SettingsDep, require
from core.model import Principal

router = APIRouter(tags=["evaluation"])
Reader = Annotated[Principal, Depends(require("admin", "highways"))]


class Scores(BaseModel):
    """Projected against observed minimum road surface temperature over the horizon, at the scored issue times.
    Event: observed at or below 0 °C; call: projected at or below the policy's trigger."""

    n: int = Field(description="issue times scored (hits + misses + false_alarms + correct_negatives)")
    mae_c: float | None = Field(description="mean absolute error, °C; null with nothing scored")
    bias_c: float | None = Field(description="mean of projected minus observed, °C (negative: projected colder)")
    hits: int = Field(description="called, and the road did reach 0 °C")
    misses: int = Field(description="not called, and the road reached 0 °C")
    false_alarms: int = Field(description="called, and the road stayed above 0 °C")
    correct_negatives: int = Field(description="not called, and the road stayed above 0 °C")
    pod: float | None = Field(description="probability of detection: hits / (hits + misses)")
    far: float | None = Field(description="false alarm ratio: false_alarms / (hits + false_alarms)")
    csi: float | None = Field(description="critical success index: hits / (hits + misses + false_alarms)")


class Baselines(BaseModel):
    """The same scores for simple rules on the same issue times."""

    persistence: Scores = Field(description="the road stays at its present temperature")
    linear_trend: Scores = Field(description="the last 3 hours' fall goes on in a straight line (never a rise)")


class HorizonScores(Scores):
    """The nowcast's scores at one horizon, with the baselines'."""

    hours: int = Field(description="hours ahead")
    baselines: Baselines
    ceiling: Scores = Field(
        description="what a perfect forecast (the observed minimum itself) scores on the same issue times: a trigger "
        "above 0 °C calls nights that stay just above freezing, so even a perfect forecast has false alarms; no "
        "forecast can score a lower FAR or a higher CSI than this"
    )


class NowcastEvaluation(BaseModel):
    """The nowcast backtest over a period."""

    stations: int = Field(description="stations with at least one scored issue time")
    issues: int = Field(description="issue times scored (station x local hour)")
    trigger_c: float = Field(description="the policy's trigger a call is made at, °C")
    horizons: list[HorizonScores]
    start: date
    end: date
    tz: str = Field(description="the time zone the issue hours and dates are local to")
    issue_hours: list[int] = Field(description="the local hours issue times were taken at")
    trigger_inclusive: bool = Field(description="true: a call at or below the trigger; false: below it")
    default_model_fitted_at: str = Field(description="when the nowcast shipped with Placewatch was fitted")
    default_in_sample: list[str] = Field(
        description="scored stations whose nights in this period the shipped default was fitted on: their figures "
        "are in-sample (optimistic)"
    )
    pooled_refits: list[str] = Field(
        description="when the replay refitted the pooled nowcast on the stored nights (as the daily learning does)"
    )
    stations_learning: int = Field(description="stations with their own correction by the end of the period")


@router.get(
    "/evaluation/nowcast",
    summary="How good the road surface temperature nowcast's calls were: a backtest over stored readings",
    response_model=NowcastEvaluation,
)
def nowcast_evaluation(
    user: Reader,
    conn: Conn,
    settings: SettingsDep,
    start: Annotated[date, Query(description="the first local date of issue times, YYYY-MM-DD")],
    end: Annotated[date, Query(description="the last local date of issue times, included")],
    horizons: Annotated[str, Query(description="hours ahead, 1 to 15, as 3,6")] = nb.DEFAULT_HORIZONS,
    issue_hours: Annotated[
        str, Query(description="local hours of issue, inclusive: 17-23, 22-2 (past midnight) or 17,19,21")
    ] = nb.DEFAULT_ISSUE_HOURS,
    tz: Annotated[str | None, Query(description="IANA time zone; default PLACEWATCH_LOCAL_ZONE")] = None,
    stations: Annotated[str | None, Query(description="road station ids, as a,b; default all")] = None,
) -> NowcastEvaluation:
    """Replays the nowcast at each issue time using only what was known then, scores it and the baselines."""
    try:
        req = nb.request(
            start,
            end,
            horizons=horizons,
            issue_hours=issue_hours,
            tz=tz,
            stations=stations,
            default_zone=settings.local_zone,
        )
        policy = nb.policy_in_force(settings)
        return NowcastEvaluation.model_validate(nb.evaluate(conn, req, policy))
    except nb.BadRequest as exc:
        raise HTTPException(422, detail=str(exc)) from None
