"""Where road forecasts stand, for the highways page: each provider's last fetch (or its failure and why), each
route's newest forecast and its age against the limit, and how far decisions reach on station data alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from alerts.forecast_fetch import PROVIDER_NAMES, forecast_limits
from api.deps import Conn, SettingsDep, require
from api.row_models import RowModels
from core.model import Principal
from store import forecasts as store

router = APIRouter(tags=["gritting"])
Highways = Annotated[Principal, Depends(require("admin", "highways"))]


# The rows are store.forecasts'; the answers add what is worked out from them here.
MODELS = RowModels({store.ProviderStatus: "ProviderRow", store.RouteForecast: "RouteForecastRow"})


class ProviderState(MODELS[store.ProviderStatus]):  # type: ignore[misc]
    """A forecast provider's last fetch."""

    name: str
    state: Literal["ok", "partial", "failing"] = Field(
        description="ok; partial (some stations had no usable forecast); failing (the last fetch gave nothing)"
    )


class RouteForecast(MODELS[store.RouteForecast]):  # type: ignore[misc]
    """A route's newest forecast, from a provider, a file or the API (or none)."""

    age_hours: float | None
    usable: bool = Field(description="young enough for decisions to use (age at most max_age_hours)")


class ForecastStatus(BaseModel):
    """Road forecasts: the provider configured for this API, every provider's state, each route's forecast."""

    configured_provider: str | None = Field(description="PLACEWATCH_FORECAST_PROVIDER where this API runs")
    providers: list[ProviderState]
    max_age_hours: float = Field(description="a forecast older than this is no longer used")
    nowcast_credible_hours: float = Field(description="without a forecast, decisions are credible this far ahead")
    nowcast_degraded_hours: float = Field(description="...and degraded up to this far; beyond it nothing is claimed")
    learned_nowcast_hours: float = Field(
        description="the nowcast learned from stations' days and nights projects this far ahead, with a band"
    )
    routes: list[RouteForecast]


@router.get("/gritting/forecast/status", response_model=ForecastStatus, summary="Where road forecasts stand")
def forecast_status(user: Highways, conn: Conn, settings: SettingsDep) -> ForecastStatus:
    """Providers' last fetches, each route's newest forecast with its age, and how far decisions reach without."""
    now = datetime.now(UTC)
    limits = forecast_limits(settings)
    providers = []
    for p in store.provider_status(conn):
        state = "failing" if p.consecutive_failures else ("partial" if p.stations_failed else "ok")
        providers.append(ProviderState(**p, name=PROVIDER_NAMES.get(p.provider, p.provider), state=state))
    routes = []
    for r in store.route_forecasts(conn, user):
        age = None if r.issued_at is None else round((now - r.issued_at).total_seconds() / 3600.0, 2)
        routes.append(RouteForecast(**r, age_hours=age, usable=age is not None and age <= limits["max_age_hours"]))
    return ForecastStatus(
        configured_provider=settings.forecast_provider or None, providers=providers, routes=routes, **limits
    )
