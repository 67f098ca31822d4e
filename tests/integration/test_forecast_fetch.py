"""Forecasts fetched from providers over real HTTP (a threaded server on 127.0.0.1 answering in the providers'
documented shapes), derived into road forecasts, stored, and used by the gritting evaluator; a provider that is down,
refuses or answers garbage is reported in the status the highways page reads and in /metrics, and the last good
forecast keeps leading until it is too old. Runs on a database of its own: fetched forecasts attach to every route."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from alerts.forecast_fetch import ForecastFetcher
from alerts.gritting import GrittingEvaluator
from alerts.scheduler import default_evaluators
from api.security import hash_password
from placewatch.embedded import free_port
from placewatch.settings import Settings
from store import gritting as gritting_store
from store import users
from store.db import connect
from store.migrate import migrate
from tests.conftest import start_api
from tests.e2e.world import evaluators, station_readings, winter_evening, write
from tests.forecast_provider import API_KEY, Provider
from tests.helpers import load, route, station
from tests.services import fresh_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    p = Provider()
    yield p
    p.close()


@pytest.fixture(scope="module")
def own_db() -> Iterator[str]:
    with fresh_database() as dsn:
        with connect(dsn) as conn:
            migrate(conn)
        load(
            dsn,
            station("fc-a", -1.916, 52.4714),
            station("fc-b", -1.956, 52.4712),
            station("fc-c", -2.005, 52.378),
            route("FC1", ["fc-a", "fc-b"]),
            route("FC2", ["fc-c"]),
        )
        now = datetime.now(UTC).replace(microsecond=0)
        readings = []
        for dev in ("fc-a", "fc-b", "fc-c"):
            readings += station_readings(dev, "warm_night", winter_evening(14, 21), now)
        write(dsn, readings)
        yield dsn


@pytest.fixture(scope="module")
def api(own_db: str, mqtt_broker: Any) -> Iterator[tuple[str, dict[str, str]]]:
    proc, url = start_api(own_db, mqtt_broker, PLACEWATCH_FORECAST_MAX_AGE_HOURS="12")
    with connect(own_db, autocommit=True) as conn:
        users.add_user(conn, name="fc-duty", password_hash=hash_password("a-long-password"), role="highways")
    tok = httpx.post(url + "/api/v1/auth/token", data={"username": "fc-duty", "password": "a-long-password"}).json()
    yield url, {"Authorization": f"Bearer {tok['access_token']}"}
    proc.stop()


def _fetcher(dsn: str, mqtt_broker: Any, **settings: Any) -> ForecastFetcher:
    base = {"database_url": dsn, "mqtt_url": mqtt_broker.url, "road_offset_min_hours": 1, "forecast_retries": 2}
    return ForecastFetcher(Settings(**(base | settings)), backoff_s=0.01)


def _fetch(dsn: str, mqtt_broker: Any, fetcher: ForecastFetcher) -> dict[str, Any]:
    with evaluators(dsn, mqtt_broker, "pw-test-forecast/v1") as ev:
        return fetcher.fetch(ev.ctx())


def _metric(text: str, name: str, provider: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(f'{name}{{provider="{provider}"}} '):
            return float(line.split()[-1])
    return None


def test_the_fetch_job_is_registered_only_when_a_provider_is_configured():
    names = [e.name for e in default_evaluators(Settings())]
    assert "forecast-fetch" not in names
    assert "forecast-fetch" in [e.name for e in default_evaluators(Settings(forecast_provider="open-meteo"))]


def test_open_meteo_forecasts_are_fetched_derived_stored_and_lead_the_decision(own_db, mqtt_broker, provider, api):
    provider.mode = "ok"
    fetcher = _fetcher(
        own_db, mqtt_broker, forecast_provider="open-meteo", open_meteo_url=provider.url + "/v1/forecast"
    )
    result = _fetch(own_db, mqtt_broker, fetcher)
    assert result["ok"] and result["routes"] == 2 and result["stations"] == 3
    path, query, _ = provider.requests[-1]
    assert path == "/v1/forecast" and len(query["latitude"][0].split(",")) == 3  # one request for every station
    assert "dew_point_2m" in query["hourly"][0] and query["wind_speed_unit"] == ["ms"]

    with connect(own_db, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT fr.route_id, f.source, f.min_rst, jsonb_array_length(f.rst_trace), f.loaded_by
               FROM gritting_forecast_routes fr JOIN gritting_forecasts f ON f.id = fr.forecast_id ORDER BY 1"""
        ).fetchall()
        assert [r[0] for r in rows] == ["FC1", "FC2"]
        assert all(r[1].startswith("Open-Meteo (road surface temperature derived") for r in rows)
        assert all(r[3] >= 30 and r[4] == "forecast-fetch:open-meteo" for r in rows)
        hours = conn.execute("SELECT count(*), count(road_surface_temperature) FROM forecast_hours").fetchone()
        assert hours[0] >= 3 * 30 and hours[0] == hours[1]
        # The derived road falls below the forecast air in clear hours away from the sun. Which clock hours the
        # fixtures' clear spells land on moves with the time the test runs (the provider starts them two hours
        # before now), and the hours of the stations' own six hours of history take their fitted offsets; but the
        # 14 clear hours in a row always hold some that neither the sun (10:00 to 17:00) nor that history covers.
        # (An earlier form, "the route's minimum below the fixtures' coldest air", held only at some times of day.)
        clear = conn.execute(
            """SELECT count(*) FILTER (WHERE road_surface_temperature < air_temperature), count(*)
               FROM forecast_hours WHERE provider = 'open-meteo' AND cloud_cover < 30"""
        ).fetchone()
        assert clear[1] > 0 and clear[0] > 0
        fitted = {r[0] for r in conn.execute("SELECT station_id FROM road_offsets")}
        assert {"*", "fc-a", "fc-b", "fc-c"} <= fitted  # six hours of each station's own history

    with evaluators(own_db, mqtt_broker, "pw-test-forecast/v1") as ev:
        ev.decide(["FC1", "FC2"])
    with connect(own_db, autocommit=True) as conn:
        decided = conn.execute(
            """SELECT d.forecast_id, d.reasons FROM gritting_route_state st
               JOIN gritting_decisions d ON d.id = st.decision_id WHERE st.route_id = 'FC1'"""
        ).fetchone()
    assert decided[0] is not None and any("forecast" in r for r in decided[1])

    url, headers = api
    status = httpx.get(url + "/api/v1/gritting/forecast/status", headers=headers).json()
    (state,) = status["providers"]
    assert state["provider"] == "open-meteo" and state["state"] == "ok" and state["routes"] == 2
    assert status["max_age_hours"] == 12 and status["nowcast_credible_hours"] == 3
    assert all(r["usable"] and r["source"].startswith("Open-Meteo") for r in status["routes"])
    metrics = httpx.get(url + "/metrics").text
    assert _metric(metrics, "placewatch_forecast_provider_up", "open-meteo") == 1
    assert "placewatch_gritting_routes_without_forecast 0" in metrics


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("down", "could not be reached"),
        ("unavailable", "answered 503"),
        ("garbage", "not JSON"),
        ("wrong-shape", "cannot be used"),
    ],
)
def test_a_provider_down_or_answering_garbage_is_reported_and_the_last_good_forecast_stays(
    own_db, mqtt_broker, provider, api, mode, words
):
    provider.mode = mode
    target = f"http://127.0.0.1:{free_port()}/v1/forecast" if mode == "down" else provider.url + "/v1/forecast"
    fetcher = _fetcher(own_db, mqtt_broker, forecast_provider="open-meteo", open_meteo_url=target)
    with connect(own_db, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM gritting_forecasts").fetchone()[0]
    result = _fetch(own_db, mqtt_broker, fetcher)
    assert not result["ok"] and words in result["error"]
    with connect(own_db, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM gritting_forecasts").fetchone()[0] == before  # nothing new

    url, headers = api
    status = httpx.get(url + "/api/v1/gritting/forecast/status", headers=headers).json()
    (state,) = status["providers"]
    assert state["state"] == "failing" and words in state["last_error"] and state["consecutive_failures"] >= 1
    assert state["last_success_at"] is not None  # the earlier good fetch is remembered
    assert all(r["usable"] for r in status["routes"])  # the last good forecast still leads
    metrics = httpx.get(url + "/metrics").text
    assert _metric(metrics, "placewatch_forecast_provider_up", "open-meteo") == 0
    assert _metric(metrics, "placewatch_forecast_provider_consecutive_failures", "open-meteo") >= 1
    assert _metric(metrics, "placewatch_forecast_provider_failures_total", "open-meteo") >= 1


def test_met_office_needs_its_key_and_then_serves_each_station(own_db, mqtt_broker, provider, api):
    provider.mode = "ok"
    url = provider.url + "/sitespecific/v0/point/hourly"
    wrong = _fetcher(own_db, mqtt_broker, forecast_provider="met-office", met_office_url=url, met_office_api_key="x")
    refused = _fetch(own_db, mqtt_broker, wrong)
    assert not refused["ok"] and "answered 401" in refused["error"]
    right = _fetcher(
        own_db, mqtt_broker, forecast_provider="met-office", met_office_url=url, met_office_api_key=API_KEY
    )
    done = _fetch(own_db, mqtt_broker, right)
    assert done["ok"] and done["routes"] == 2
    assert sum(1 for p, _, h in provider.requests if p.endswith("/point/hourly") and h.get("apikey") == API_KEY) >= 3
    # The issue time is the model run's (two hours before now in the fixture), not the fetch time.
    assert done["issued"] <= datetime.now(UTC) - timedelta(hours=1)
    api_url, headers = api
    status = httpx.get(api_url + "/api/v1/gritting/forecast/status", headers=headers).json()
    states = {p["provider"]: p["state"] for p in status["providers"]}
    assert states["met-office"] == "ok"


def test_a_forecast_older_than_the_limit_ages_out_visibly(own_db, mqtt_broker, api):
    with connect(own_db, autocommit=True) as conn:  # the clock moves on: every forecast is now 13 hours old
        conn.execute("UPDATE gritting_forecasts SET issued_at = issued_at - interval '13 hours'")
        conn.execute("UPDATE gritting_forecast_routes SET issued_at = issued_at - interval '13 hours'")
    url, headers = api
    status = httpx.get(url + "/api/v1/gritting/forecast/status", headers=headers).json()
    assert status["max_age_hours"] == 12
    assert all(not r["usable"] and r["age_hours"] > 12 for r in status["routes"])
    assert "placewatch_gritting_routes_without_forecast 2" in httpx.get(url + "/metrics").text
    # The evaluator takes PLACEWATCH_FORECAST_MAX_AGE_HOURS over the policy's 24 h, so it reads no forecast now.
    evaluator = GrittingEvaluator(Settings(database_url=own_db, mqtt_url=mqtt_broker.url, forecast_max_age_hours=12))
    assert evaluator.policy.forecast_max_age_hours == 12
    since = datetime.now(UTC) - timedelta(hours=evaluator.policy.forecast_max_age_hours)
    with connect(own_db, autocommit=True) as conn:
        assert gritting_store.latest_forecasts(conn, route_ids=["FC1", "FC2"], since=since) == {}
