"""Road forecasts fetched from a weather provider on a schedule, for the stations of every route.

PLACEWATCH_FORECAST_PROVIDER picks the provider (off when empty):

- `open-meteo`: Open-Meteo's forecast API, no key; one request for every station's position at once.
- `met-office`: the Met Office Weather DataHub site-specific hourly forecast, PLACEWATCH_MET_OFFICE_API_KEY; one
  request per station.

Their base URLs are settings (PLACEWATCH_OPEN_METEO_URL, PLACEWATCH_MET_OFFICE_URL) for a council's proxy, and for
the tests' local server. Each request has a timeout and is tried PLACEWATCH_FORECAST_RETRIES times with a doubling
pause. Neither provider forecasts the road, so its air temperature, dew point, cloud and wind become a road surface
temperature curve per station (core.gritting.road_from_air) with the road-minus-air offsets this job fits once a day
from the stations' own readings; a route's forecast is each hour's coldest station. The forecasts are stored as
every forecast is (store.gritting.load_forecasts: the scheduler re-decides their routes at once).

A provider that cannot be reached, refuses, or answers what cannot be read is recorded with the reason
(forecast_provider_status: the highways page and /metrics show it); nothing else changes, so the last good
forecast keeps leading until it is older than the forecast age limit, and then decisions say so and rest on the
stations' readings alone.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerts.context import AlertContext, Evaluator
from core.gritting import learned
from core.gritting.providers import (
    ProviderError,
    met_office_query,
    open_meteo_query,
    parse_met_office,
    parse_open_meteo,
)
from core.gritting.road_from_air import (
    HourlyWeather,
    RoadOffsets,
    StationOffsets,
    cloud_class,
    fit_offsets,
    road_temperature,
    route_forecast,
)
from placewatch.settings import Settings
from store import forecasts as store
from store import gritting as gritting_store

log = logging.getLogger("placewatch.alerts.forecast")
PROVIDER_NAMES = {"open-meteo": "Open-Meteo", "met-office": "Met Office DataHub"}
REFIT_EVERY = timedelta(hours=24)
FIT_HISTORY = timedelta(days=60)
OPEN_METEO_BATCH = 100  # positions per request
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class FetchFailed(Exception):
    """A request that did not give a usable answer, after its retries; the message says why."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def get_json(
    url: str,
    params: dict[str, str],
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float,
    attempts: int,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """GET url?params and parse JSON; network errors, timeouts and 5xx/429 answers are tried again after
    backoff_s, 2 backoff_s, ... ; other answers and bodies that are not JSON fail at once (FetchFailed)."""
    full = f"{url}?{urllib.parse.urlencode(params)}"
    if not url.startswith(("https://", "http://")):  # the settings check it too; urllib would also open file:
        raise FetchFailed(f"{url!r} is not an http(s) address")
    request = urllib.request.Request(full, headers={"Accept": "application/json", **(headers or {})})  # noqa: S310
    last = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            sleep(backoff_s * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as r:  # noqa: S310 - http(s) URLs from settings
                body = r.read(32 * 1024 * 1024)
        except urllib.error.HTTPError as exc:
            text = exc.read(300).decode("utf-8", "replace").strip()
            last = f"{_host(url)} answered {exc.code}{': ' + text if text else ''}"
            if exc.code in _RETRY_STATUS:
                continue
            raise FetchFailed(last, status=exc.code) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"{_host(url)} could not be reached: {reason}"
            continue
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            snippet = body[:80].decode("utf-8", "replace")
            raise FetchFailed(f"{_host(url)} answered something that is not JSON: {snippet!r}") from None
    raise FetchFailed(f"{last} ({attempts} {'try' if attempts == 1 else 'tries'})")


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


class ForecastFetcher(Evaluator):
    """Fetches, derives and stores every route's road forecast from the configured provider (leader only)."""

    name = "forecast-fetch"
    first_delay_s = 5.0

    def __init__(
        self, settings: Settings, *, backoff_s: float = 2.0, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        if not settings.forecast_provider:
            raise ValueError("no forecast provider configured (PLACEWATCH_FORECAST_PROVIDER)")
        self.settings = settings
        self.provider = settings.forecast_provider
        self.interval_s = settings.forecast_interval_minutes * 60.0
        self.zone = ZoneInfo(settings.local_zone)
        self.backoff_s = backoff_s
        self.sleep = sleep

    # -- the evaluator: a sweep only (new readings reach the offsets at the daily refit) -----------------------

    def sweep(self, ctx: AlertContext) -> None:
        """Fetch now."""
        self.fetch(ctx)

    # -- fetching ---------------------------------------------------------------------------------------

    def fetch(self, ctx: AlertContext) -> dict[str, Any]:
        """One round: refit the offsets when due, fetch every placed station, store each route's forecast and the
        provider's state. Returns what happened (for logs and tests)."""
        now = ctx.now()
        with ctx.pool.connection() as conn:
            places = store.route_station_places(conn)
            fitted_at, fits = store.load_offsets(conn)
            if fitted_at is None or now - fitted_at >= REFIT_EVERY:
                fits = self.refit(conn, now)
        positions = {p.station_id: (p.lon, p.lat) for p in places}
        if not positions:
            log.info("forecast: no route has a station with a place in the registry: nothing to fetch")
            return {"ok": True, "stations": 0, "routes": 0}
        try:
            weather, failed, issued = self._ask(positions, now)
        except FetchFailed as exc:
            return self._failed(ctx, now, str(exc), len(positions))
        if not weather:
            reasons = "; ".join(f"{sid}: {why}" for sid, why in sorted(failed.items())[:3])
            return self._failed(ctx, now, f"no station had a usable forecast ({reasons})", len(positions))
        pooled = fits.get(store.POOLED)
        offsets = {sid: StationOffsets(fits.get(sid), pooled) for sid in positions}
        routes: dict[str, list[str]] = {}
        for p in places:
            routes.setdefault(p.route_id, []).append(p.station_id)
        name = PROVIDER_NAMES[self.provider]
        source = f"{name} (road surface temperature derived from air temperature, dew point, cloud and wind)"
        items = []
        for rid, sids in sorted(routes.items()):
            fc = route_forecast(
                issued_at=issued,
                stations={s: weather[s] for s in sids if s in weather},
                offsets=offsets,
                now=now,
                hours=self.settings.forecast_hours,
                zone=self.zone,
            )
            if fc is None:
                continue
            items.append(gritting_store.ForecastInput(forecast=fc, route_ids=(rid,), source=source))
        partial = None
        if failed:
            some = "; ".join(f"{sid}: {why}" for sid, why in sorted(failed.items())[:3])
            partial = f"{len(failed)} of {len(positions)} stations had no usable forecast ({some})"
        with ctx.pool.connection() as conn:
            hours = [
                (sid, w, road_temperature(w, offsets[sid], self.zone)[0]) for sid, ws in weather.items() for w in ws
            ]
            store.record_hours(conn, provider=self.provider, fetched_at=now, hours=hours)
            if items:
                gritting_store.load_forecasts(conn, items, loaded_by=f"forecast-fetch:{self.provider}")
            store.record_attempt(
                conn,
                provider=self.provider,
                at=now,
                ok=True,
                error=partial,
                stations=len(positions),
                stations_failed=len(failed),
                routes=len(items),
                issued_at=issued if items else None,
            )
        log.info(
            "forecast: %s issued %s: %d routes from %d stations%s",
            name,
            issued.isoformat(),
            len(items),
            len(weather),
            f"; {partial}" if partial else "",
        )
        return {"ok": True, "stations": len(positions), "failed": len(failed), "routes": len(items), "issued": issued}

    def _failed(self, ctx: AlertContext, now: datetime, reason: str, stations: int) -> dict[str, Any]:
        log.warning("forecast: %s failed: %s", PROVIDER_NAMES[self.provider], reason)
        with ctx.pool.connection() as conn:
            store.record_attempt(
                conn,
                provider=self.provider,
                at=now,
                ok=False,
                error=reason,
                stations=stations,
                stations_failed=stations,
                routes=0,
                issued_at=None,
            )
        return {"ok": False, "error": reason, "stations": stations, "routes": 0}

    def _ask(
        self, positions: dict[str, tuple[float, float]], now: datetime
    ) -> tuple[dict[str, list[HourlyWeather]], dict[str, str], datetime]:
        """(hourly weather by station, why each failed station failed, the forecast's issue time)."""
        s = self.settings
        common = {"timeout_s": s.forecast_timeout_s, "attempts": s.forecast_retries, "backoff_s": self.backoff_s}
        weather: dict[str, list[HourlyWeather]] = {}
        failed: dict[str, str] = {}
        issued = now.replace(second=0, microsecond=0)
        ids = sorted(positions)
        if self.provider == "open-meteo":
            for i in range(0, len(ids), OPEN_METEO_BATCH):
                batch = ids[i : i + OPEN_METEO_BATCH]
                query = open_meteo_query([positions[sid] for sid in batch], hours=s.forecast_hours)
                doc = get_json(s.open_meteo_url, query, sleep=self.sleep, **common)  # type: ignore[arg-type]
                try:
                    for sid, hours in zip(batch, parse_open_meteo(doc, expected=len(batch)), strict=True):
                        weather[sid] = hours
                except ProviderError as exc:
                    raise FetchFailed(f"Open-Meteo's answer cannot be used: {exc}") from None
            return weather, failed, issued
        key = s.met_office_api_key.get_secret_value() if s.met_office_api_key else ""
        runs: list[datetime] = []
        for sid in ids:
            try:
                doc = get_json(
                    s.met_office_url,
                    met_office_query(positions[sid]),
                    headers={"apikey": key},
                    sleep=self.sleep,
                    **common,  # type: ignore[arg-type]
                )
                run, hours = parse_met_office(doc)
            except FetchFailed as exc:
                if exc.status in (401, 403) or (not weather and not failed and exc.status is None):
                    raise  # a refused key, or a service that is down: do not wait out every station's retries
                failed[sid] = str(exc)
                continue
            except ProviderError as exc:
                failed[sid] = f"the answer cannot be used: {exc}"
                continue
            weather[sid] = hours
            if run is not None:
                runs.append(run)
        return weather, failed, min(runs) if runs else issued

    # -- the road-minus-air fit ---------------------------------------------------------------------------

    def refit(self, conn: Any, now: datetime) -> dict[str, RoadOffsets]:
        """Fit each station's road-minus-air offsets (and the pooled fit of all) from the last 60 days; store them."""
        history = store.offset_history(conn, since=now - FIT_HISTORY, zone=self.settings.local_zone)
        least = self.settings.road_offset_min_hours
        fits: dict[str, RoadOffsets] = {}
        every: list[tuple[int, str | None, float]] = []
        for sid, rows in history.items():
            samples = [(hour, cloud_class(cloud), diff) for hour, cloud, diff in rows]
            every += samples
            fit = fit_offsets(samples, min_hours=least)
            if fit.cells:
                fits[sid] = fit
        fits[store.POOLED] = fit_offsets(every, min_hours=least)  # kept even when empty: it dates the fit
        store.save_offsets(conn, fitted_at=now, fits=fits)
        log.info(
            "forecast: road-minus-air offsets fitted for %d of %d stations (%d hourly means)",
            len(fits) - (store.POOLED in fits),
            len(history),
            len(every),
        )
        return fits


def forecast_limits(settings: Settings) -> dict[str, float]:
    """How old a forecast may be before decisions stop using it (PLACEWATCH_FORECAST_MAX_AGE_HOURS, else the
    policy's forecast_max_age_hours), and how far a station-only nowcast reaches (the policy's credible and
    degraded hours, and the learned nowcast's longest horizon): what the highways page and /metrics tell people."""
    from alerts.gritting import load_policy
    from core.gritting import GrittingPolicy

    try:
        policy = load_policy(settings.gritting_policy_file)
    except ValueError:  # the scheduler refuses to start on it and says why; the page still answers
        policy = GrittingPolicy()
    max_age = settings.forecast_max_age_hours or policy.forecast_max_age_hours
    return {
        "max_age_hours": float(max_age),
        "nowcast_credible_hours": float(policy.nowcast_credible_hours),
        "nowcast_degraded_hours": float(policy.nowcast_degraded_hours),
        "learned_nowcast_hours": float(learned.HORIZONS[-1]),
    }
