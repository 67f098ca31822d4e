"""What the pages' map (dashboards/static/map.js) is drawn on: the council's tile or WMTS URL template and its
attribution (PLACEWATCH_MAP_TILE_URL, PLACEWATCH_MAP_ATTRIBUTION), or none, for a plain background on a
network without them. No token: the public page draws the same map, and the settings hold no data."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from placewatch.settings import Settings

router = APIRouter(include_in_schema=False)
_PLACEHOLDER = re.compile(r"\{[^}]*\}")


def tile_origin(template: str) -> str | None:
    """The origin a tile URL template fetches from, as a Content-Security-Policy source: a `{s}` (or other
    placeholder) in the host's first label becomes `*`; None when there are no tiles."""
    if not template:
        return None
    parts = urlsplit(template)
    host = parts.netloc.rsplit("@", 1)[-1]
    labels = host.split(".")
    if labels and _PLACEHOLDER.search(labels[0]):
        labels[0] = "*"
    host = ".".join(labels)
    if _PLACEHOLDER.search(host):  # a placeholder deeper in the host name: allow the scheme only
        return f"{parts.scheme}:"
    return f"{parts.scheme}://{host}"


def map_settings(settings: Settings) -> dict[str, Any]:
    """The map's settings as the pages read them."""
    return {
        "tile_url": settings.map_tile_url or None,
        "attribution": settings.map_attribution if settings.map_tile_url else "",
        "max_zoom": settings.map_max_zoom,
    }


@router.get("/map/settings.json")
def get_map_settings(request: Request) -> JSONResponse:
    """{"tile_url": template or null, "attribution": HTML, "max_zoom": n}."""
    return JSONResponse(map_settings(request.app.state.settings), headers={"Cache-Control": "no-cache"})
