"""The FastAPI application: built from Settings, with a connection pool opened in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from api.ratelimit import SlidingWindowLimiter
from api.routers import admin, auth, damp, devices, gritting, health, homes
from api.routers import metrics as metrics_router
from api.security_headers import SecurityHeadersMiddleware
from dashboards.map_settings import tile_origin
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

    # /docs and /redoc are api.docs: Swagger UI and ReDoc served by this process (FastAPI's own load from a CDN).
    app = FastAPI(
        title="Placewatch",
        version=VERSION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.login_limiter = SlidingWindowLimiter(settings.login_attempts_per_minute)
    tiles = tile_origin(settings.map_tile_url)  # the map's tile server may serve images to the pages
    app.add_middleware(SecurityHeadersMiddleware, img_sources=(tiles,) if tiles else ())
    app.add_exception_handler(psycopg.DataError, _unusable_value)
    app.openapi = _with_error_responses(app)  # type: ignore[method-assign]
    app.include_router(metrics_router.router)
    v1 = APIRouter(prefix="/api/v1")
    v1.include_router(health.router)
    v1.include_router(auth.router)
    v1.include_router(devices.router)
    v1.include_router(admin.router)
    v1.include_router(gritting.router)
    v1.include_router(__import__("api.routers.forecasts", fromlist=["router"]).router)
    v1.include_router(homes.router)
    v1.include_router(damp.router)
    v1.include_router(__import__("api.routers.reports", fromlist=["router"]).router)
    v1.include_router(__import__("api.routers.evaluation", fromlist=["router"]).router)
    v1.include_router(__import__("api.routers.notifications", fromlist=["router"]).router)
    v1.include_router(__import__("api.routers.council", fromlist=["router"]).router)
    app.include_router(v1)
    app.include_router(__import__("api.docs", fromlist=["router"]).router)
    app.include_router(__import__("api.routers.council", fromlist=["open_data"]).open_data)
    app.include_router(__import__("dashboards.open_data", fromlist=["router"]).router)
    app.include_router(__import__("dashboards.map_settings", fromlist=["router"]).router)
    app.include_router(__import__("dashboards.pages", fromlist=["router"]).router)
    return app


async def _unusable_value(request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot hold or compare (a NUL character in text, a number past bigint) is the
    request's fault, not the server's: 422, never 500."""
    reason = (str(exc).strip().splitlines() or ["bad value"])[0][:200]
    return JSONResponse({"detail": f"a value in the request cannot be used: {reason}"}, status_code=422)


_ERROR = {"$ref": "#/components/schemas/Error"}


def _with_error_responses(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """app.openapi, documenting the error answers the operations give, each {"detail": ...}: 400 (a body
    that does not parse), 401 and 403, 404 (a path naming nothing the caller may see), 422 (its detail is
    FastAPI's list of errors or the routers' sentence) and 503 (health)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = {
            "title": "Error",
            "type": "object",
            "properties": {"detail": {"title": "Detail", "description": "what is wrong, for a person to read"}},
            "required": ["detail"],
        }
        invalid = schemas.get("HTTPValidationError", {}).get("properties", {})
        if "detail" in invalid:
            invalid["detail"] = {
                "title": "Detail",
                "anyOf": [invalid["detail"], {"type": "string"}, {"type": "object"}],
            }
        for path, operations in schema.get("paths", {}).items():
            for method, op in operations.items():
                errors = []
                if op.get("security"):
                    errors += [("401", "Missing, invalid or expired bearer token"), ("403", "The role may not do this")]
                if "{" in path:
                    errors.append(("404", "Nothing by that name that the caller may see"))
                if "requestBody" in op:
                    errors.append(("400", "The body could not be parsed"))
                if op.get("parameters") or method in ("put", "post", "patch"):
                    errors.append(("422", "A value in the request is not acceptable"))
                if path.endswith("/health"):
                    errors.append(("503", "The database or the broker is unreachable"))
                answers = op.setdefault("responses", {})
                for code, text in errors:
                    answers.setdefault(code, {"description": text, "content": {"application/json": {"schema": _ERROR}}})
        return schema

    return openapi
