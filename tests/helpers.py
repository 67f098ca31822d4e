"""Small builders for registry files in tests."""

from __future__ import annotations

import json
from typing import Any

from core.registry import parse_registry
from store import registry
from store.db import connect


def station(dev: str, lon: float = -1.9, lat: float = 52.48) -> dict[str, Any]:
    """A road_station feature."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"kind": "road_station", "id": dev},
    }


def home(hid: str, patch: str = "north") -> dict[str, Any]:
    """A home feature."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [-1.9, 52.47]},
        "properties": {"kind": "home", "id": hid, "address": f"{hid} Test Street", "patch": patch},
    }


def sensor(dev: str, hid: str, room: str = "bedroom") -> dict[str, Any]:
    """A home_sensor feature."""
    return {
        "type": "Feature",
        "geometry": None,
        "properties": {"kind": "home_sensor", "id": dev, "home": hid, "room": room},
    }


def route(rid: str, stations: list[str], **props: Any) -> dict[str, Any]:
    """A route feature."""
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[-1.9, 52.48], [-1.8, 52.49]]},
        "properties": {
            "kind": "route",
            "id": rid,
            "name": f"Route {rid}",
            "priority": 1,
            "treatment_minutes": 180,
            "stations": stations,
            **props,
        },
    }


def collection(*features: dict[str, Any]) -> str:
    """A FeatureCollection as pretty JSON text (one property per line, so errors have useful lines)."""
    return json.dumps({"type": "FeatureCollection", "features": list(features)}, indent=2)


def load(dsn: str, *features: dict[str, Any]) -> None:
    """Load features into the registry."""
    text = collection(*features)
    with connect(dsn) as conn:
        registry.load(conn, parse_registry(text), text=text)
