"""The interactive API docs, /docs (Swagger UI 5) and /redoc (ReDoc 2), with every file served by this process from
the installed fastapi-offline package (its static folder holds swagger-ui-dist's bundle and stylesheet and ReDoc's
standalone bundle). Nothing comes from a CDN, so the docs work on a council network with no internet."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, Response

router = APIRouter(include_in_schema=False)

PREFIX = "/static/vendor/api-docs"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
# The files the docs pages load, as the package names them.
FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
MAX_AGE = 24 * 3600


@functools.cache
def assets_dir() -> Path:
    """The static folder of the installed fastapi-offline package."""
    path = Path(str(resources.files("fastapi_offline") / "static"))
    missing = [name for name in FILES if not (path / name).is_file()]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} missing from the fastapi-offline package ({path})")
    return path


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    """Swagger UI over /openapi.json (sign in with Authorize: username and password, as on /login)."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Placewatch API – Swagger UI",
        swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{PREFIX}/favicon.png",
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
        redoc_js_url=f"{PREFIX}/redoc.standalone.js",
        redoc_favicon_url=f"{PREFIX}/favicon.png",
        with_google_fonts=False,
    )


# ReDoc's sidebar shows Redocly's logo from their CDN, with no option to turn it off: the one outside address in the
# bundle, pointed here at the local icon so that the page asks nothing of the internet.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@functools.cache
def redoc_js() -> bytes:
    """ReDoc's standalone bundle with its logo served locally."""
    text = (assets_dir() / "redoc.standalone.js").read_bytes()
    return text.replace(REDOC_LOGO, f"{PREFIX}/favicon.png".encode())


@router.get(PREFIX + "/{name}")
def asset(name: str) -> Response:
    """One of the docs pages' files, from the installed package."""
    media = FILES.get(name)
    if media is None:
        raise HTTPException(404, detail="not found")
    headers = {"Cache-Control": f"public, max-age={MAX_AGE}"}
    if name == "redoc.standalone.js":
        return Response(redoc_js(), media_type=media, headers=headers)
    return FileResponse(assets_dir() / name, media_type=media, headers=headers)
