"""GET /metrics for Prometheus: what the database says about readings, devices, decisions, cases and deliveries.

Not under /api/v1 and without a token, like the health checks: the figures are counts, never data. Keep the
port away from the internet (or scrape through the reverse proxy with its own access rule).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from placewatch.metrics import CONTENT_TYPE, Metric, render
from store import metrics as store_metrics

router = APIRouter(tags=["operations"], include_in_schema=False)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """The text exposition format; placewatch_database_up is 0 (and the rest absent) when the database is not."""
    settings = request.app.state.settings
    started = time.perf_counter()
    figures: store_metrics.Figures | None = None
    try:
        with request.app.state.pool.connection(timeout=5) as conn:
            figures = store_metrics.figures(
                conn,
                now=datetime.now(UTC),
                default_interval_s=settings.default_interval_seconds,
                stale_factor=settings.stale_after_factor,
            )
    except Exception:  # the scrape must answer: a database that is down is itself the figure
        figures = None
    out = [
        Metric("placewatch_database_up", "gauge", "1 when the database answered this scrape.").add(figures is not None)
    ]
    if figures is not None:
        out.extend(_from_figures(figures))
        out.extend(_forecasts(request))
    out.append(
        Metric("placewatch_metrics_scrape_seconds", "gauge", "Time reading these figures took.").add(
            time.perf_counter() - started
        )
    )
    return Response(render(out), media_type=CONTENT_TYPE)


def _from_figures(f: store_metrics.Figures) -> list[Metric]:
    out: list[Metric] = []
    if f.readings is not None:
        out.append(
            Metric("placewatch_readings", "gauge", "Raw readings stored (an estimate on large tables).").add(f.readings)
        )
    if f.dead_letters is not None:
        out.append(
            Metric("placewatch_dead_letters", "gauge", "Dead letters stored (an estimate on large tables).").add(
                f.dead_letters
            )
        )
    if f.dead_letters_last_hour is not None:
        out.append(
            Metric("placewatch_dead_letters_last_hour", "gauge", "Dead letters received in the last hour.").add(
                f.dead_letters_last_hour
            )
        )
    if f.late_windows is not None:
        out.append(
            Metric("placewatch_late_windows_pending", "gauge", "Late-data windows not yet re-evaluated.").add(
                f.late_windows
            )
        )
    devices = Metric("placewatch_devices", "gauge", "Devices by kind and status (online, offline, stale).")
    for (kind, status), n in sorted(f.devices.items()):
        devices.add(n, kind=kind, status=status)
    out.append(devices)
    problems = Metric("placewatch_device_problems_open", "gauge", "Open device health problems by code.")
    for code, n in sorted(f.device_problems.items()):
        problems.add(n, code=code)
    out.append(problems)
    if f.decisions is not None:
        m = Metric("placewatch_gritting_decisions", "gauge", "Gritting decisions raised, by action and status.")
        for (action, status), n in sorted(f.decisions.items()):
            m.add(n, action=action, status=status)
        out.append(m)
    if f.cases is not None:
        m = Metric("placewatch_damp_cases", "gauge", "Damp and mould cases raised, by level and status.")
        for (level, status), n in sorted(f.cases.items()):
            m.add(n, level=level, status=status)
        out.append(m)
    if f.deliveries is not None:
        m = Metric("placewatch_notification_deliveries", "gauge", "Notification deliveries by channel and status.")
        for (channel, status), n in sorted(f.deliveries.items()):
            m.add(n, channel=channel, status=status)
        out.append(m)
        failed = sum(n for (_, status), n in f.deliveries.items() if status == "failed")
        out.append(Metric("placewatch_notification_failures", "gauge", "Deliveries that failed for good.").add(failed))
    if f.failed:
        m = Metric("placewatch_metrics_figure_errors", "gauge", "Figures this scrape could not read.")
        for name in f.failed:
            m.add(1, figure=name)
        out.append(m)
    return out


def _forecasts(request: Request) -> list[Metric]:
    """Forecast providers' state (alerts/forecast_fetch.py) and routes left without a usable forecast."""
    from alerts.forecast_fetch import forecast_limits

    now = datetime.now(UTC)
    max_age = forecast_limits(request.app.state.settings)["max_age_hours"]
    try:
        with request.app.state.pool.connection(timeout=5) as conn:
            f = store_metrics.forecast_figures(conn, now=now, max_age_hours=max_age)
    except Exception:  # the scrape must answer: the forecast figures are left out
        logging.getLogger("placewatch.metrics").warning("metrics: could not read the forecast figures", exc_info=True)
        return []
    up = Metric("placewatch_forecast_provider_up", "gauge", "1 when the provider's last fetch gave a forecast.")
    streak = Metric("placewatch_forecast_provider_consecutive_failures", "gauge", "Fetches failed in a row.")
    failures = Metric("placewatch_forecast_provider_failures_total", "counter", "Fetches that gave nothing.")
    missing = Metric(
        "placewatch_forecast_provider_stations_failed", "gauge", "Stations the last fetch could not serve."
    )
    age = Metric("placewatch_forecast_provider_last_success_age_seconds", "gauge", "Time since the last good fetch.")
    for p in f["providers"]:
        name = p["provider"]
        up.add(0 if p["consecutive_failures"] else 1, provider=name)
        streak.add(p["consecutive_failures"], provider=name)
        failures.add(p["failures"], provider=name)
        missing.add(p["stations_failed"], provider=name)
        if p["last_success_at"] is not None:
            age.add((now - p["last_success_at"]).total_seconds(), provider=name)
    without = Metric(
        "placewatch_gritting_routes_without_forecast",
        "gauge",
        "Routes with no forecast young enough to use: their decisions rest on station data alone.",
    ).add(f["routes_without"])
    return [up, streak, failures, missing, age, without]
