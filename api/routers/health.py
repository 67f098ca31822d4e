"""Liveness and readiness: is the database answering, is the broker accepting connections."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from placewatch.mqttclient import probe
from store import queries

router = APIRouter(tags=["health"])
_BROKER_CACHE_S = 5.0


class Health(BaseModel):
    """Whether the API can reach what it needs."""

    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unreachable"]
    broker: Literal["ok", "unreachable"]
    version: str


class Live(BaseModel):
    """The process answers."""

    status: Literal["ok"]


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "the database or the broker is unreachable"}},
    summary="200 when the database and the broker are reachable",
)
def health(request: Request, response: Response) -> Health:
    """Readiness: checks PostgreSQL and the MQTT broker (the broker result is cached a few seconds)."""
    state = request.app.state
    settings = state.settings
    db_ok = False
    try:
        with state.pool.connection(timeout=3) as conn:
            db_ok = queries.ping(conn)
    except Exception:
        db_ok = False
    cached: tuple[float, bool] | None = getattr(state, "broker_probe", None)
    if cached is None or time.monotonic() - cached[0] > _BROKER_CACHE_S:
        cached = (
            time.monotonic(),
            probe(settings.mqtt_url, protocol=settings.mqtt_protocol, ca_file=settings.mqtt_ca_file),
        )
        state.broker_probe = cached
    broker_ok = cached[1]
    body = Health(
        status="ok" if db_ok and broker_ok else "unavailable",
        database="ok" if db_ok else "unreachable",
        broker="ok" if broker_ok else "unreachable",
        version=request.app.version,
    )
    response.status_code = 200 if db_ok and broker_ok else 503
    return body


@router.get("/live", response_model=Live, summary="200 while the API process is serving")
def live() -> Live:
    """Liveness: the process answers."""
    return Live(status="ok")
