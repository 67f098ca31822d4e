"""The interactive API docs, /docs (Swagger UI) and /redoc (ReDoc), with every file served by this process: Swagger
UI from the installed swagger-ui-bundle package, ReDoc from dashboards/static/vendor/redoc (vendored from the npm
registry with its licence). Nothing comes from a CDN, so the docs work on a council network with no internet."""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter(include_in_schema=False)

SWAGGER_PREFIX = "/static/vendor/swagger-ui"
REDOC_JS = "/static/vendor/redoc/redoc.standalone.js"
FAVICON = "/static/vendor/swagger-ui/favicon-32x32.png"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
# Swagger UI's files that the docs page loads (the package has more: source maps, an index page).
SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
MAX_AGE = 24 * 3600


@functools.cache
def swagger_ui_dir() -> Path:
    """The Swagger UI dist files of the installed swagger-ui-bundle package."""
    import swagger_ui_bundle

    path = Path(swagger_ui_bundle.swagger_ui_path)
    if not (path / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(f"swagger-ui-bundle.js is missing from the swagger-ui-bundle package ({path})")
    return path


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    """Swagger UI over /openapi.json (sign in with Authorize: username and password, as on /login)."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Placewatch API – Swagger UI",
        swagger_js_url=f"{SWAGGER_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_PREFIX}/swagger-ui.css",
        swagger_favicon_url=FAVICON,
        oauth2_redirect_url=OAUTH2_REDIRECT,
        # No online validator badge: it would ask validator.swagger.io about the schema.
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
    )


@router.get(OAUTH2_REDIRECT)
def swagger_ui_redirect() -> HTMLResponse:
    """Swagger UI's OAuth2 redirect page."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc() -> HTMLResponse:
    """ReDoc over /openapi.json."""
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="Placewatch API – ReDoc",
        redoc_js_url=REDOC_JS,
        redoc_favicon_url=FAVICON,
        with_google_fonts=False,
    )


@router.get(SWAGGER_PREFIX + "/{name}")
def swagger_file(name: str) -> FileResponse:
    """One of Swagger UI's files, from the installed package."""
    media = SWAGGER_FILES.get(name)
    if media is None:
        raise HTTPException(404, detail="not found")
    return FileResponse(
        swagger_ui_dir() / name, media_type=media, headers={"Cache-Control": f"public, max-age={MAX_AGE}"}
    )
