"""The map's tile server as a Content-Security-Policy source, and the settings the pages read."""

from __future__ import annotations

from dashboards.map_settings import map_settings, tile_origin
from placewatch.settings import Settings


def test_the_tile_server_origin_is_what_the_pages_may_load_images_from():
    assert tile_origin("https://tile.openstreetmap.org/{z}/{x}/{y}.png") == "https://tile.openstreetmap.org"
    assert tile_origin("https://{s}.tiles.council.example/{z}/{x}/{y}.png") == "https://*.tiles.council.example"
    assert tile_origin("http://127.0.0.1:8081/wmts/{z}/{x}/{y}.png") == "http://127.0.0.1:8081"
    assert tile_origin("https://api.os.uk/maps/raster/v1/zxy/Road_3857/{z}/{x}/{y}.png?key=k") == "https://api.os.uk"
    assert tile_origin("https://tiles.{s}.example/{z}/{x}/{y}.png") == "https:"
    assert tile_origin("") is None


def test_no_tiles_means_no_attribution():
    assert map_settings(Settings(map_tile_url=""))["tile_url"] is None
    assert map_settings(Settings(map_tile_url=""))["attribution"] == ""
    osm = map_settings(Settings())
    assert osm["tile_url"].startswith("https://tile.openstreetmap.org/") and "OpenStreetMap" in osm["attribution"]
