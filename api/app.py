"""The FastAPI application: built from Settings, with a connection pool opened in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from api.routers import admin, auth, devices, gritting, health
from placewatch.settings import Settings
from store.db import open_pool

VERSION = "0.1.0"


def create_app(settings: Settings, *, dsn: str | None = None) -> FastAPI:
    """The API for these settings; the pool opens on start-up and fails fast if the database is unreachable."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = open_pool(dsn or settings.dsn(), max_size=settings.database_pool_max)
        app.state.pool = pool
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(title="Placewatch", version=VERSION, lifespan=lifespan, openapi_url="/openapi.json")
    app.state.settings = settings
    v1 = APIRouter(prefix="/api/v1")
    v1.include_router(health.router)
    v1.include_router(auth.router)
    v1.include_router(devices.router)
    v1.include_router(admin.router)
    v1.include_router(gritting.router)
    app.include_router(v1)
    return app
