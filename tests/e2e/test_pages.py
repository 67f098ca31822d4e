"""The pages in headless Chromium, against the real API with data made by the real evaluators: a tenant sees
their own home's chart and level but never another home; a duty officer acknowledges a decision from the
keyboard; the officer's list is in risk order with overdue deadlines in red; the public page and the open data
hold nothing that points to a home. Screenshots of each page go to /tmp/pw-shots/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from core.gritting.vocab import ACTOR_LABELS, EVALUATOR
from store.db import connect
from tests.e2e.conftest import shoot, sign_in
from tests.e2e.world import Town, build_town, forget_readings

pytestmark = pytest.mark.e2e

OPEN_DATA = (
    "/open-data/roads.json",
    "/open-data/roads.csv",
    "/open-data/roads.geojson",
    "/open-data/gritting.json",
    "/open-data/gritting.csv",
    "/open-data/gritting.geojson",
    "/open-data/homes-by-area.json",
    "/open-data/homes-by-area.csv",
)
RED = "rgb(164, 22, 26)"  # --danger in app.css


@pytest.fixture(scope="module")
def town(database_url: str, mqtt_broker: Any, api_url: str) -> Iterator[Town]:
    """The e2e world (registry, a week and a half of readings, cases and a gritting decision)."""
    town = build_town(database_url, mqtt_broker, uuid.uuid4().hex[:6])
    yield town
    forget_readings(database_url, town.devices)


def unlabelled_controls(page: Any) -> list[str]:
    """Form controls a screen reader could not name."""
    return page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
             .filter((e) => !e.hidden && e.type !== 'hidden')
             .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
             .map((e) => e.outerHTML.slice(0, 120))"""
    )


def test_a_tenant_sees_their_own_home_and_chart_but_never_another_home(
    open_page, api_url: str, town: Town, make_user: Any
):
    name, password = make_user("tenant", home=town.homes["red"])
    page, watch = open_page(width=1280)
    sign_in(page, api_url, name, password, lands_on="/tenant")

    page.wait_for_selector("#temperature-chart.js-plotly-plot .main-svg")
    page.wait_for_selector("#humidity-chart.js-plotly-plot .main-svg")
    traces = page.evaluate(
        """() => ['temperature-chart', 'humidity-chart'].map((id) => document.getElementById(id).data
                 .map((t) => ({name: t.name, points: t.y.filter((v) => v !== null).length})))"""
    )
    for chart in traces:
        assert {t["name"] for t in chart} == {"Bedroom", "Living room"}
        assert all(t["points"] >= 24 * 6 for t in chart)  # hourly means over the last 7 days
    assert page.locator("#address").inner_text() == town.addresses["red"]
    assert page.locator("#level-badge").inner_text().startswith("Red: High risk of damp and mould")
    advice = page.locator("#advice li").all_inner_texts()
    assert any("humidity" in a for a in advice) and any("landlord" in a.lower() for a in advice)
    assert "Sign out" in page.locator("#session").inner_text()
    assert unlabelled_controls(page) == []
    shoot(page, "tenant-desktop")

    # The keyboard reaches the range control and the charts redraw for it.
    page.locator("#range").focus()
    page.keyboard.press("ArrowUp")  # "the last 24 hours"
    page.wait_for_function("() => document.getElementById('temperature-caption').textContent.includes('24 hours')")

    # Another home: whatever the address bar says, the API answers 404 and the page shows nothing of it.
    other = town.homes["other"]
    page.goto(f"{api_url}/tenant?home={quote(other, safe='')}")
    page.wait_for_function("() => document.getElementById('home-heading').textContent === 'Home not found'")
    text = page.locator("body").inner_text()
    assert other not in text and town.addresses["other"] not in text
    assert page.locator("#home").is_hidden()
    assert (f"/api/v1/homes/{quote(other, safe='')}", 404) in watch.api_calls
    status = page.evaluate(
        """async (id) => {
             const auth = {Authorization: 'Bearer ' + sessionStorage.getItem('placewatch.token')};
             const url = '/api/v1/devices/' + encodeURIComponent(id + '/bedroom') + '/readings?metric=temperature';
             return (await fetch(url, {headers: auth})).status;
           }""",
        other,
    )
    assert status == 404
    # Officers' and highways' pages are not for a tenant.
    page.goto(f"{api_url}/officer")
    page.wait_for_selector("text=This page is not for your account")
    # The browser logs the API's refusals themselves as failed loads; nothing else may be there.
    watch.errors = [e for e in watch.errors if not e.startswith("Failed to load resource") or "404" not in e]
    watch.check()

    # On a phone: one column, nothing wider than the screen.
    phone, phone_watch = open_page(width=375, height=800)
    sign_in(phone, api_url, name, password, lands_on="/tenant")
    phone.wait_for_selector("#humidity-chart.js-plotly-plot .main-svg")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    shoot(phone, "tenant-phone")
    phone_watch.check()


def test_a_duty_officer_acknowledges_starts_and_completes_a_decision(
    open_page, api_url: str, town: Town, make_user: Any
):
    name, password = make_user("highways")
    page, watch = open_page(width=1280)
    sign_in(page, api_url, name, password, lands_on="/highways")
    _routes_drawn(page, "#route-map path.pw-route--precautionary_salt")
    card = page.locator(f'article.route[data-route-id="{town.route}"]')
    assert "Precautionary salting" in card.inner_text()
    assert card.locator(".route__status").get_attribute("data-status") == "issued"
    # Issued by Placewatch itself: said so in words, not by the evaluator's internal actor name.
    assert f"by {ACTOR_LABELS[EVALUATOR]}" in card.inner_text() and f"by {EVALUATOR}" not in card.inner_text()
    page.wait_for_selector(f'article.route[data-route-id="{town.route}"] figure.station .js-plotly-plot .main-svg')
    key = page.locator("#route-map + .pw-map-legend").inner_text()
    assert "Precautionary salting" in key and "Road station" in key
    shoot(page, "highways-desktop")

    # The keyboard: a note, then focus on Acknowledge and Enter.
    card.get_by_label("Note (optional)").fill("crews on standby at Ashton depot")
    card.locator('button[data-action="acknowledge"]').focus()
    page.keyboard.press("Enter")
    card = page.locator(f'article.route[data-route-id="{town.route}"]')
    page.wait_for_selector(f'article.route[data-route-id="{town.route}"] .route__status[data-status="acknowledged"]')
    assert "Acknowledged" in card.locator(".route__status").inner_text()
    assert f"by {name}" in card.inner_text()
    assert "acknowledged by you" in page.locator("#status").inner_text()
    assert card.locator('button[data-action="acknowledge"]').count() == 0  # only what the state allows is offered
    shoot(page, "highways-acknowledged")

    token = page.evaluate("sessionStorage.getItem('placewatch.token')")
    headers = {"Authorization": f"Bearer {token}"}
    d = httpx.get(f"{api_url}/api/v1/gritting/decisions/{town.decision_id}", headers=headers).json()
    assert d["status"] == "acknowledged" and d["status_by"] == name
    assert d["history"][-1]["note"] == "crews on standby at Ashton depot"

    # And with the mouse: start, then complete.
    card.locator('button[data-action="start"]').click()
    page.wait_for_selector(f'article.route[data-route-id="{town.route}"] .route__status[data-status="in_progress"]')
    page.locator(f'article.route[data-route-id="{town.route}"] button[data-action="complete"]').click()
    page.wait_for_selector(f'article.route[data-route-id="{town.route}"] .route__status[data-status="completed"]')
    d = httpx.get(f"{api_url}/api/v1/gritting/decisions/{town.decision_id}", headers=headers).json()
    assert [(e["event"], e["actor"]) for e in d["history"]] == [
        ("issued", "evaluator"),
        ("acknowledged", name),
        ("started", name),
        ("completed", name),
    ]
    watch.check()


def test_the_officer_page_lists_homes_by_risk_with_days_left_and_overdue_in_red(
    open_page, api_url: str, town: Town, make_user: Any
):
    name, password = make_user("officer", patch=town.patch)
    page, watch = open_page(width=1280)
    sign_in(page, api_url, name, password, lands_on="/officer")
    page.wait_for_selector("#homes tr[data-home]")
    rows = page.locator("#homes tr[data-home]")
    label = {v: k for k, v in town.homes.items()}
    order = [label[h] for h in rows.evaluate_all("(rs) => rs.map((r) => r.dataset.home)")]
    levels = rows.evaluate_all("(rs) => rs.map((r) => r.dataset.level)")
    assert order[:3] == ["late", "red", "watch"] and sorted(order[3:]) == ["green1", "green2", "green3"]
    assert levels == ["red", "red", "watch", "green", "green", "green"]
    assert "other" not in order  # another patch's home

    late = page.locator(f'#homes tr[data-home="{town.homes["late"]}"]')
    cell = late.locator("td.days-left")
    assert re.fullmatch(r"Overdue by \d+ working days?", cell.inner_text().strip())
    assert cell.evaluate("(e) => getComputedStyle(e).color") == RED
    assert "is-overdue" in (late.get_attribute("class") or "")
    fresh = page.locator(f'#homes tr[data-home="{town.homes["red"]}"] td.days-left')
    assert re.fullmatch(r"\d+ working days? left", fresh.inner_text().strip())
    assert fresh.evaluate("(e) => getComputedStyle(e).color") != RED
    for badge, word in zip(rows.locator("td .badge").all_inner_texts(), ["Red", "Red", "Watch"], strict=False):
        assert badge == word  # the level in words, not colour alone
    assert unlabelled_controls(page) == []
    shoot(page, "officer-desktop")

    # A case action from the page, recorded with the officer's name.
    case_id = town.cases["red"]
    page.locator(f'#homes tr[data-home="{town.homes["red"]}"] a[href="#case-{case_id}"]').click()
    page.wait_for_selector(f"#case-{case_id}[open]")  # the link opens the case's details
    block = page.locator(f"#case-{case_id}")
    block.get_by_label("Record an action", exact=True).select_option("acknowledge")
    block.get_by_label("Note (optional)").fill("Phoned the tenant; visit booked")
    block.get_by_role("button", name="Record").click()
    page.wait_for_function(f"() => document.getElementById('status').textContent.includes('Case {case_id}')")
    token = page.evaluate("sessionStorage.getItem('placewatch.token')")
    case = httpx.get(f"{api_url}/api/v1/damp/cases/{case_id}", headers={"Authorization": f"Bearer {token}"}).json()
    assert case["status"] == "investigating"
    last = case["history"][-1]
    assert (last["action"], last["actor"], last["note"]) == ("acknowledge", name, "Phoned the tenant; visit booked")
    assert f"by {name}" in page.locator(f"#case-{case_id} .history").inner_text()
    watch.check()


def _homes(database_url: str) -> list[tuple[str, str | None, Any]]:
    with connect(database_url) as conn:
        return conn.execute("SELECT id, address, geometry FROM homes").fetchall()


def _pairs(value: Any) -> set[tuple[float, float]]:
    """Every [lon, lat] pair anywhere in a JSON value (GeoJSON coordinates, or lon/lat fields)."""
    out: set[tuple[float, float]] = set()
    if isinstance(value, dict):
        if isinstance(value.get("lon"), float | int) and isinstance(value.get("lat"), float | int):
            out.add((float(value["lon"]), float(value["lat"])))
        for v in value.values():
            out |= _pairs(v)
    elif isinstance(value, list):
        if len(value) == 2 and all(isinstance(x, float | int) for x in value):
            out.add((float(value[0]), float(value[1])))
        for v in value:
            out |= _pairs(v)
    return out


def test_the_public_page_and_open_data_hold_nothing_that_points_to_a_home(
    open_page, api_url: str, town: Town, database_url: str
):
    page, watch = open_page(width=1280)
    page.goto(f"{api_url}/public")
    _routes_drawn(page, "#road-map path.pw-route")
    page.wait_for_selector(f'#areas tr[data-area="{town.patch}"]')
    area = page.locator(f'#areas tr[data-area="{town.patch}"]').inner_text()
    assert "20 %" in area  # one red home of the five with readings
    assert page.locator(f'#areas tr[data-area="{town.small_patch}"]').count() == 0  # one home: withheld
    assert "not shown because fewer than 5" in page.locator("#withheld").inner_text()
    assert f"Ring road {town.uid}" in page.locator("#routes").inner_text()
    shoot(page, "public-desktop")
    phone, phone_watch = open_page(width=375, height=800)
    phone.goto(f"{api_url}/public")
    _routes_drawn(phone, "#road-map path.pw-route")
    shoot(phone, "public-phone")

    # Only open data was asked for: nothing under /api/v1.
    assert watch.api_calls and all(path.startswith("/open-data/") for path, _ in watch.api_calls)
    shown = page.content() + page.locator("body").inner_text()
    downloads = {path: httpx.get(api_url + path) for path in OPEN_DATA}
    assert all(r.status_code == 200 for r in downloads.values())
    assert downloads["/open-data/roads.csv"].headers["content-type"].startswith("text/csv")
    assert downloads["/open-data/roads.geojson"].headers["content-type"].startswith("application/geo+json")

    homes = _homes(database_url)
    home_places = {(float(g["coordinates"][0]), float(g["coordinates"][1])) for _, _, g in homes if g}
    texts = {"page": shown, **{p: r.text for p, r in downloads.items()}}
    for where, text in texts.items():
        for label, hid in town.homes.items():
            assert hid not in text, f"{where} names home {label}"
            assert town.addresses[label] not in text, f"{where} gives the address of home {label}"
            lon, lat = town.places[label]
            assert f"{lon}" not in text and f"{lat}" not in text, f"{where} gives the place of home {label}"
        for hid, address, _ in homes:
            assert not (address and address in text), f"{where} gives the address of {hid}"
            assert not (len(hid) >= 8 and hid in text), f"{where} names home {hid}"
    for path, r in downloads.items():
        if path.endswith(("json", "geojson")):
            leaked = _pairs(r.json()) & home_places
            assert not leaked, f"{path} has a home's place: {leaked}"
    areas = downloads["/open-data/homes-by-area.json"].json()
    assert all(a["homes_with_data"] >= areas["min_homes"] == 5 for a in areas["areas"])
    assert set(areas["areas"][0]) == {
        "area",
        "homes",
        "homes_with_data",
        "share",
        "mean_temperature",
        "mean_relative_humidity",
    }
    gritting = downloads["/open-data/gritting.json"].text
    assert "status_by" not in gritting and '"evaluator"' not in gritting  # no names of staff
    watch.check()
    phone_watch.check()


def test_plotly_is_served_from_the_installed_package_with_long_cache_headers(api_url: str):
    r = httpx.get(f"{api_url}/static/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert "max-age=31536000" in r.headers["cache-control"] and "immutable" in r.headers["cache-control"]
    assert r.headers.get("content-encoding") == "gzip" and r.text.lstrip().startswith("/**")
    again = httpx.get(f"{api_url}/static/vendor/plotly.min.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    page = httpx.get(f"{api_url}/highways").text
    assert re.search(r'<script src="/static/vendor/plotly\.min\.js\?v=[\d.]+" defer></script>', page)
    assert "cdn" not in page.lower() and "https://" not in page
    assert httpx.get(f"{api_url}/static/../pages.py").status_code == 404
    assert httpx.get(f"{api_url}/static/%2e%2e/pages.py").status_code == 404


def test_plotly_own_style_rules_are_served_as_the_file_plotly_would_otherwise_inject(
    open_page, api_url: str, town: Town, make_user: Any
):
    page, watch = open_page(width=800)
    name, password = make_user("tenant", home=town.homes["red"])
    sign_in(page, api_url, name, password, lands_on="/tenant")

    # The page as it is: Plotly finds its rules linked and injects no <style> (CSP style-src 'self' would refuse it).
    page.wait_for_selector("#temperature-chart.js-plotly-plot .main-svg")
    assert page.evaluate("document.querySelectorAll('style').length") == 0
    assert page.evaluate("getComputedStyle(document.querySelector('.modebar-group')).position") == "relative"
    served = page.evaluate(
        "[...document.getElementById('plotly.js-style-global').sheet.cssRules].map((r) => r.cssText)"
    )

    # The same page without the link and without a policy: the rules Plotly injects itself must be the same.
    def bare(route: Any) -> None:
        response = route.fetch()
        headers = {k: v for k, v in response.headers.items() if k != "content-security-policy"}
        body = re.sub(r'<link id="plotly\.js-style-global"[^>]*>', "", response.text())
        route.fulfill(response=response, headers=headers, body=body)

    page.route(f"{api_url}/tenant", bare)
    page.goto(f"{api_url}/tenant")
    page.wait_for_selector("#temperature-chart.js-plotly-plot .main-svg")
    injected = page.evaluate(
        """() => { const e = document.getElementById('plotly.js-style-global');
                   return e.tagName === 'STYLE' ? [...e.sheet.cssRules].map((r) => r.cssText) : []; }"""
    )
    assert injected and served == injected
    watch.check()


def _routes_drawn(page: Any, selector: str) -> None:
    """Wait until the map has drawn routes matching selector: attached, not visible, because the run's shared
    database may hold other tests' routes of a single point, which Leaflet draws as an invisible path and which
    may come first."""
    page.locator(selector).first.wait_for(state="attached")
