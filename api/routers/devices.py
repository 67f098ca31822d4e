"""Devices and their readings, limited to what the caller may see (others are 404)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from alerts.health import problem_json
from api.deps import Conn, SettingsDep, User
from api.routers.admin import ProblemView
from core.devices import DeviceStatus, device_status, parse_bucket
from core.metrics import METRICS
from core.timeparse import parse_any, utc_z, utc_z_or_none
from store import health, queries

router = APIRouter(prefix="/devices", tags=["devices"])
MAX_RAW_POINTS = 100_000


class DeviceProblem(ProblemView):
    """An open problem of a device, in words, and who looks after it."""

    team: str = Field(description="the team that looks after the device")


class DeviceView(BaseModel):
    """A device the caller may see: what it is, whether it is heard from, its latest values and open problems."""

    id: str
    kind: str
    name: str | None
    model: str | None
    format: str | None
    home_id: str | None
    room: str | None
    source: str | None
    expected_interval_s: int | None
    last_seen: str | None
    status: DeviceStatus
    reported_status: str | None = Field(description="what the device last said of itself (online, offline)")
    latest: dict[str, Any] | None = Field(description="the latest value of each metric, with its time")
    problems: list[DeviceProblem]
    geometry: dict[str, Any] | None


class Point(BaseModel):
    """A reading (raw: ts and value) or a bucket (ts, avg, min, max, count; mode for a categorical metric)."""

    ts: str
    value: float | str | None = None
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    count: int | None = None
    mode: str | None = None


class Readings(BaseModel):
    """A device's readings of one metric over [start, end)."""

    device_id: str
    metric: str
    unit: str
    start: str
    end: str
    bucket: str | None
    truncated: bool = Field(description="more raw readings than `limit` in the period")
    points: list[Point]


def _device_view(
    row: queries.DeviceRow, settings: Any, now: datetime, problems: list[health.OpenProblem]
) -> dict[str, Any]:
    status = device_status(
        row.reported_status,
        row.last_seen,
        row.expected_interval_s,
        now,
        default_interval_s=settings.default_interval_seconds,
        stale_factor=settings.stale_after_factor,
    )
    return {
        "id": row.id,
        "kind": row.kind,
        "name": row.name,
        "model": row.model,
        "format": row.format,
        "home_id": row.home_id,
        "room": row.room,
        "source": row.source,
        "expected_interval_s": row.expected_interval_s,
        "last_seen": utc_z_or_none(row.last_seen),
        "status": status,
        "reported_status": row.reported_status,
        "latest": row.latest,
        "problems": [problem_json(p) for p in problems],
        "geometry": row.geometry,
    }


@router.get(
    "",
    summary="Devices with id, kind, last_seen and status (online, offline, stale)",
    response_model=list[DeviceView],
)
def list_devices(
    user: User,
    conn: Conn,
    settings: SettingsDep,
    after: Annotated[str | None, Query(description="page on: only devices whose id sorts after this one")] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="at most this many (default: all)")] = None,
) -> Response:
    """Every device the caller may see, by id; `after` and `limit` page through a large fleet. Written straight to
    JSON (a fleet can be 100,000 devices, and their stored latest values and geometry are passed through
    unparsed): the shape is DeviceView's, as get_device answers it."""
    return Response(device_list_json(conn, user, settings, after=after, limit=limit), media_type="application/json")


def device_list_json(conn: Any, user: Any, settings: Any, *, after: str | None, limit: int | None) -> bytes:
    """The device list as JSON: the stored JSON (latest values, geometry) is passed through unparsed."""
    now = datetime.now(UTC)
    rows = queries.devices(conn, user, after=after, limit=limit, raw_json=True)
    ids = [r.id for r in rows]
    problems = health.open_problems(conn, ids if len(ids) <= 1000 else None)
    out = []
    for r in rows:
        view = _device_view(r, settings, now, problems.get(r.id, []))
        view["latest"] = orjson.Fragment(r.latest)
        view["geometry"] = None if r.geometry is None else orjson.Fragment(r.geometry)
        out.append(view)
    return orjson.dumps(out)


def _time(value: str | None, name: str, default: datetime) -> datetime:
    if value is None or value == "":
        return default
    try:
        return parse_any(int(value) if value.isdigit() else value)
    except ValueError as exc:
        raise HTTPException(422, detail=f"{name}: {exc}") from None


@router.get(
    "/{device_id:path}/readings",
    summary="A device's readings, raw or in buckets; text/csv on request",
    response_model=Readings,
    response_model_exclude_unset=True,
    responses={200: {"content": {"text/csv": {}}}},
)
def readings(
    device_id: str,
    request: Request,
    user: User,
    conn: Conn,
    settings: SettingsDep,
    metric: Annotated[str | None, Query(description="metric name; optional when the device has one")] = None,
    start: Annotated[str | None, Query(description="RFC 3339 or epoch ms; default end - 24 h")] = None,
    end: Annotated[str | None, Query(description="RFC 3339 or epoch ms; default now")] = None,
    bucket: Annotated[str | None, Query(description="e.g. 15m, 1h, 1d (Europe/London days)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RAW_POINTS)] = MAX_RAW_POINTS,
) -> Response:
    """{"device_id", "metric", "unit", "points": [{"ts", "value"}]}, or buckets with avg, min, max, count. Written
    straight to JSON (up to 100,000 points): the shape is Readings'."""
    series = queries.series_for(conn, user, device_id)
    if series is None:
        raise HTTPException(404, detail=f"no device {device_id!r}")
    by_metric = {s.metric: s for s in series}
    if metric is None:
        if len(by_metric) != 1:
            raise HTTPException(
                422, detail=f"say which metric: this device has {', '.join(sorted(by_metric)) or 'no readings yet'}"
            )
        metric = next(iter(by_metric))
    spec = METRICS.get(metric)
    if spec is None:
        raise HTTPException(422, detail=f"unknown metric {metric!r}")
    t_end = _time(end, "end", datetime.now(UTC) + timedelta(seconds=1))
    t_start = _time(start, "start", t_end - timedelta(hours=24))
    if t_start >= t_end:
        raise HTTPException(422, detail="start must be before end")
    width = None
    if bucket:
        try:
            width = parse_bucket(bucket)
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from None
        if (t_end - t_start) / width > MAX_RAW_POINTS:
            raise HTTPException(422, detail=f"too many buckets: at most {MAX_RAW_POINTS}; use a wider bucket")
    s = by_metric.get(metric)
    categorical = spec.categories is not None
    points: list[dict[str, Any]] = []
    truncated = False
    if s is not None and width is None:
        rows = queries.raw_points(conn, s.id, t_start, t_end, limit + 1)
        truncated = len(rows) > limit
        points = [{"ts": utc_z(ts), "value": label if categorical else value} for ts, value, label in rows[:limit]]
    elif s is not None and width is not None:
        buckets = queries.bucket_points(
            conn, s.id, t_start, t_end, width, zone=settings.local_zone, categorical=categorical
        )
        for b in buckets:
            p = {"ts": utc_z(b.ts), "avg": b.avg, "min": b.min, "max": b.max, "count": b.count}
            if categorical:
                p["mode"] = b.mode
            points.append(p)
    body = {
        "device_id": device_id,
        "metric": metric,
        "unit": spec.unit,
        "start": utc_z(t_start),
        "end": utc_z(t_end),
        "bucket": bucket,
        "truncated": truncated,
        "points": points,
    }
    if "text/csv" in request.headers.get("accept", ""):
        return _csv(body, bucketed=width is not None)
    return JSONResponse(body)


def _csv(body: dict[str, Any], *, bucketed: bool) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = ["ts", "avg", "min", "max", "count"] if bucketed else ["ts", "value"]
    w.writerow(["device_id", "metric", "unit", *cols])
    for p in body["points"]:
        w.writerow([body["device_id"], body["metric"], body["unit"], *[p.get(c) for c in cols]])
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in body["device_id"])
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{safe}-{body["metric"]}.csv"'},
    )


@router.get("/{device_id:path}", response_model=DeviceView, summary="One device")
def get_device(device_id: str, user: User, conn: Conn, settings: SettingsDep) -> DeviceView:
    """One device the caller may see, else 404."""
    rows = queries.devices(conn, user, device_id=device_id)
    if not rows:
        raise HTTPException(404, detail=f"no device {device_id!r}")
    problems = health.open_problems(conn, [device_id])
    return DeviceView.model_validate(_device_view(rows[0], settings, datetime.now(UTC), problems.get(device_id, [])))
