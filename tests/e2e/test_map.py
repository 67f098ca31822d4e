"""The highways map in Chromium on a network with no tile server: the demo registry's routes drawn in their decision's
colour with a key, station labels that never overlap, popups that name the decision and the readings, the view fitted
to the features; then the same page with a council tile server that answers. And the forecast status: no forecast
loaded (and how far decisions then reach), a good fetch, then a provider that is down. Runs its own API on a database
of its own (tiles configured to a loopback port), so the map holds only what this module loaded."""

from __future__ import annotations

import json
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from alerts.forecast_fetch import ForecastFetcher
from api.security import hash_password
from placewatch.cli import DEMO_REGISTRY
from placewatch.embedded import free_port
from placewatch.settings import Settings
from store import users
from store.db import connect
from store.migrate import migrate
from tests.conftest import start_api
from tests.e2e.conftest import SHOTS, shoot, sign_in
from tests.e2e.world import evaluators, station_readings, winter_evening, write
from tests.forecast_provider import Provider
from tests.helpers import load
from tests.services import fresh_database

pytestmark = pytest.mark.e2e
STATIONS = {  # the demo registry's stations and the scenario each plays tonight
    "rws-five-ways": "rain_then_freeze",
    "rws-hagley-road": "freezes_at_0200",
    "rws-bristol-road": "warm_night",
    "rws-selly-oak": "warm_night",
    "rws-lickey-hills": "hoar_frost",
    "rws-sutton-park": "dry_cold",
}


@dataclass
class World:
    """This module's API and what it needs."""

    url: str
    dsn: str
    tile_port: int
    user: tuple[str, str]
    provider: Provider
    broker: Any = None
    routes: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def world(mqtt_broker: Any) -> Iterator[World]:
    tile_port = free_port()  # nothing listens there until test_tiles_from_a_council_server_are_drawn_under_the_routes
    provider = Provider()
    with fresh_database() as dsn:
        with connect(dsn) as conn:
            migrate(conn)
        load(dsn, *json.loads(Path(DEMO_REGISTRY).read_text(encoding="utf-8"))["features"])
        now = datetime.now(UTC).replace(microsecond=0)
        readings = []
        for dev, scenario in STATIONS.items():
            readings += station_readings(dev, scenario, winter_evening(14, 21), now)
        write(dsn, readings)
        with evaluators(dsn, mqtt_broker, "pw-test-map/v1") as ev:
            ev.decide(["P1", "P2", "P3", "S1"])
        with connect(dsn, autocommit=True) as conn:
            users.add_user(conn, name="map-duty", password_hash=hash_password("a-long-password"), role="highways")
        proc, url = start_api(
            dsn, mqtt_broker, PLACEWATCH_MAP_TILE_URL=f"http://127.0.0.1:{tile_port}/{{z}}/{{x}}/{{y}}.png"
        )
        try:
            yield World(
                url, dsn, tile_port, ("map-duty", "a-long-password"), provider, mqtt_broker, ["P1", "P2", "P3", "S1"]
            )
        finally:
            proc.stop()
            provider.close()


@dataclass
class Seen:
    """Requests and console errors of a page, with the tile server's origin allowed (and nothing else outside)."""

    tiles: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def page_for(browser: Any, world: World) -> Iterator[Any]:
    contexts = []

    def make(width: int = 1280, height: int = 900) -> tuple[Any, Seen]:
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale="en-GB", service_workers="block")
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        seen = Seen()
        tiles = f"http://127.0.0.1:{world.tile_port}/"

        def guard(route: Any) -> None:
            u = route.request.url
            if u.startswith(tiles):
                seen.tiles.append(u)
                route.continue_()  # a real request: refused when nothing listens, answered when the server does
            elif u.startswith(world.url + "/"):
                route.continue_()
            else:
                seen.outside.append(u)
                route.abort()

        ctx.route("**/*", guard)
        page = ctx.new_page()

        def console(m: Any) -> None:
            if m.type == "error" and not (m.location or {}).get("url", "").startswith(tiles):
                seen.errors.append(m.text)

        page.on("console", console)
        page.on("pageerror", lambda e: seen.errors.append(f"uncaught: {e}"))
        return page, seen

    yield make
    for ctx in contexts:
        ctx.close()


def label_boxes(page: Any, kind: str) -> list[dict[str, float]]:
    return page.evaluate(
        f"""() => [...document.querySelectorAll('#route-map .pw-label--{kind}:not(.pw-label--hidden)')]
             .map((e) => {{ const r = e.getBoundingClientRect();
                           return {{left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                                    text: e.textContent}}; }})"""
    )


def shoot_part(page: Any, name: str, part: str = "#route-map") -> None:
    """The page, and the section holding `part` alone (the page is long: that section is what these tests check)."""
    shoot(page, name)
    page.locator(part).locator("xpath=ancestor-or-self::section[1]").screenshot(path=str(SHOTS / f"{name}-part.png"))


def overlapping(boxes: list[dict[str, float]]) -> list[tuple[str, str]]:
    return [
        (a["text"], b["text"])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]
    ]


def test_the_map_draws_routes_and_station_labels_with_no_tile_server(page_for, world: World):
    page, seen = page_for(1280)
    sign_in(page, world.url, *world.user, lands_on="/highways")
    page.wait_for_selector("#route-map path.pw-route")
    page.wait_for_function("/could not be loaded/.test((document.querySelector('.pw-map-note') || {}).textContent)")
    assert page.locator("#route-map").get_attribute("data-routes") == "4"
    assert page.locator("#route-map").get_attribute("data-stations") == "6"
    assert page.locator("#route-map path.pw-route").count() == 4
    note = page.locator(".pw-map-note").inner_text()
    assert f"127.0.0.1:{world.tile_port}" in note and "plain background" in note
    assert seen.tiles, "the map asked the configured tile server for tiles"
    assert not seen.outside and not seen.errors, (seen.outside, seen.errors)

    # Every route is labelled by its decision, and the key names each decision drawn.
    routes = page.locator("#route-map .pw-label--route").all_inner_texts()
    assert len(routes) == 4 and all(": " in r for r in routes)
    key = page.locator("#route-map + .pw-map-legend").inner_text()
    for text in routes:
        assert text.rsplit(": ", 1)[1] in key

    shoot_part(page, "map-no-tiles-desktop")
    # Station labels: all six are there; those shown never overlap each other or a route label.
    assert page.locator("#route-map .pw-label--station").count() == 6
    shown = label_boxes(page, "station") + label_boxes(page, "route")
    assert len(label_boxes(page, "station")) >= 4
    assert overlapping(shown) == []
    assert any("Lickey Hills" in b["text"] and "°C" in b["text"] for b in shown)

    # The view fits the features: every station dot is inside the map.
    inside = page.evaluate(
        """() => { const m = document.getElementById('route-map').getBoundingClientRect();
                   return [...document.querySelectorAll('#route-map path.pw-station')].every((p) => {
                     const r = p.getBoundingClientRect();
                     return r.left >= m.left && r.right <= m.right && r.top >= m.top && r.bottom <= m.bottom; }); }"""
    )
    assert inside

    # A route's popup: its decision, and its stations' readings by name. Click where a person can: a point of a
    # route's line that no label or station dot covers (which routes are free depends on tonight's labels).
    spot = page.evaluate(
        """() => { for (const p of document.querySelectorAll('#route-map path.pw-route')) {
                     const len = p.getTotalLength(), m = p.getScreenCTM();
                     for (let i = 1; i < 40; i++) {
                       const q = p.getPointAtLength(len * i / 40), x = q.x * m.a + m.e, y = q.y * m.d + m.f;
                       if (document.elementFromPoint(x, y) === p) return [x, y];
                     } }
                   return null; }"""
    )
    assert spot, "some route's line can be clicked"
    page.mouse.click(*spot)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    assert "Road surface temperature:" in text and "°C" in text
    assert any(
        label in text for label in ("Salt", "Precautionary salting", "Monitor", "No treatment needed", "Escalated")
    )
    shoot_part(page, "map-popup")
    assert not seen.errors, seen.errors

    # Zooming in shows labels that were hidden, still without overlap.
    page.locator(".leaflet-control-zoom-in").click()
    page.wait_for_timeout(600)
    assert overlapping(label_boxes(page, "station") + label_boxes(page, "route")) == []


def test_the_map_on_a_phone_keeps_true_shape_and_readable_labels(page_for, world: World):
    page, seen = page_for(375, 800)
    sign_in(page, world.url, *world.user, lands_on="/highways")
    page.wait_for_selector("#route-map path.pw-route")
    shown = label_boxes(page, "station") + label_boxes(page, "route")
    assert overlapping(shown) == [] and len(shown) >= 3
    frame = page.locator("#route-map").bounding_box()
    right, bottom = frame["x"] + frame["width"], frame["y"] + frame["height"]
    cut = [b["text"] for b in shown if b["left"] < frame["x"] or b["right"] > right or b["bottom"] > bottom]
    assert cut == [], f"labels cut by the map's edge: {cut}"
    # Web Mercator: at 52.4 N a degree of longitude is cos(52.4) of a degree of latitude on the screen too.
    ratio = page.evaluate(
        """() => { const m = document.getElementById('route-map').pwMap.map;
                   const a = m.latLngToContainerPoint([52.4, -1.9]), b = m.latLngToContainerPoint([52.5, -1.8]);
                   return Math.abs(b.x - a.x) / Math.abs(b.y - a.y); }"""
    )
    assert ratio == pytest.approx(0.61, abs=0.02)
    shoot_part(page, "map-no-tiles-phone")
    assert not seen.outside and not seen.errors, (seen.outside, seen.errors)


def test_the_forecast_status_says_plainly_what_decisions_rest_on(page_for, world: World):
    page, seen = page_for(1280)
    sign_in(page, world.url, *world.user, lands_on="/highways")
    page.wait_for_selector("#no-forecast")
    text = page.locator("#forecast-status").inner_text()
    assert "No forecast is loaded." in text
    assert "learned from stations' days and nights: projected up to 15 h ahead with a band" in text
    assert "credible up to 3 h, degraded up to 6 h" in text
    assert "PLACEWATCH_FORECAST_PROVIDER" in text
    shoot_part(page, "forecast-none", "#forecast-panel")

    # A good fetch from the (local) Open-Meteo, then one that finds the provider down.
    base = {
        "database_url": world.dsn,
        "mqtt_url": world.broker.url,
        "forecast_provider": "open-meteo",
        "forecast_retries": 1,
    }
    good = ForecastFetcher(Settings(**base, open_meteo_url=world.provider.url + "/v1/forecast"), backoff_s=0.01)
    down = ForecastFetcher(
        Settings(**base, open_meteo_url=f"http://127.0.0.1:{free_port()}/v1/forecast"), backoff_s=0.01
    )
    with evaluators(world.dsn, world.broker, "pw-test-map/v1") as ev:
        assert good.fetch(ev.ctx())["ok"]
        page.reload()
        page.wait_for_selector('#forecast-status [data-provider="open-meteo"][data-state="ok"]')
        ok_text = page.locator("#forecast-status").inner_text()
        assert "Forecast from Open-Meteo" in ok_text and "for 4 routes" in ok_text
        assert page.locator("#no-forecast").count() == 0
        shoot_part(page, "forecast-ok", "#forecast-panel")
        assert not down.fetch(ev.ctx())["ok"]
    page.reload()
    page.wait_for_selector('#forecast-status [data-provider="open-meteo"][data-state="failing"]')
    failing = page.locator('#forecast-status [data-state="failing"]').inner_text()
    assert "Open-Meteo could not give a forecast" in failing and "could not be reached" in failing
    assert "The last good fetch was at" in failing
    page.locator("#forecast-status summary").click()
    rows = page.locator('#forecast-routes tbody tr[data-usable="true"]')
    assert rows.count() == 4  # the last good forecast still leads every route
    colour = page.evaluate(
        "getComputedStyle(document.querySelector('#forecast-status [data-state=failing]')).borderLeftColor"
    )
    assert colour == "rgb(164, 22, 26)"
    shoot_part(page, "forecast-failing", "#forecast-panel")
    assert not seen.outside and not seen.errors, (seen.outside, seen.errors)


class _Tiles(BaseHTTPRequestHandler):
    """A council tile server: a light grey 256 x 256 PNG for every {z}/{x}/{y}."""

    def do_GET(self) -> None:
        raw = b"".join(b"\x00" + b"\xdd\xe3\xe8" * 256 for _ in range(256))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0))
        png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(png)))
        self.end_headers()
        self.wfile.write(png)

    def log_message(self, *args: Any) -> None:
        pass


def test_tiles_from_a_council_server_are_drawn_under_the_routes(page_for, world: World):
    httpd = ThreadingHTTPServer(("127.0.0.1", world.tile_port), _Tiles)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        page, seen = page_for(1280)
        sign_in(page, world.url, *world.user, lands_on="/highways")
        page.wait_for_selector("#route-map img.leaflet-tile-loaded")
        page.wait_for_selector("#route-map path.pw-route")
        assert page.locator(".pw-map-note").count() == 0 or "could not" not in page.locator(".pw-map-note").inner_text()
        csp = page.evaluate("() => fetch('/highways').then((r) => r.headers.get('content-security-policy'))")
        assert f"img-src 'self' data: blob: http://127.0.0.1:{world.tile_port}" in csp
        shoot_part(page, "map-with-tiles")
        assert seen.tiles and not seen.outside and not seen.errors, (seen.outside, seen.errors)
        settings = json.loads(page.evaluate("() => fetch('/map/settings.json').then((r) => r.text())"))
        assert settings["tile_url"].startswith(f"http://127.0.0.1:{world.tile_port}/")
    finally:
        httpd.shutdown()
        httpd.server_close()
