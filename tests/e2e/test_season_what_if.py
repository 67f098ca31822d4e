"""A highways manager in headless Chromium asks the season report's what-if over the seeded season
(tests/season_world.py, the nights of 12 to 14 January 2026): first with another trigger, then with a policy file,
and reads the answer in words and per route. Screenshots go to /tmp/pw-shots/."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import shoot, sign_in

pytestmark = pytest.mark.e2e


def test_the_what_if_form_answers_in_words_and_per_route(open_page, api_url: str, season, make_user: Any):
    name, password = make_user("highways")
    page, watch = open_page(width=1280)
    sign_in(page, api_url, name, password, lands_on="/highways")
    page.goto(f"{api_url}/reports?start=2026-01-12&end=2026-01-14")
    page.wait_for_selector("#routes-table tbody tr")
    assert "Not computed" in page.locator("#what-if-text").inner_text()
    form = page.locator("#what-if-form")
    assert form.is_visible() and page.locator("#what-if-table").is_hidden()

    # Nothing asked: told in words, nothing fetched.
    form.get_by_role("button", name="Work out the what-if").click()
    page.locator("#status", has_text="give a trigger in °C or choose a policy file").wait_for()

    page.get_by_label("Trigger (°C road surface temperature)").fill("1.0")
    form.get_by_role("button", name="Work out the what-if").click()
    page.wait_for_selector('#what-if-text[data-status="computed"]', timeout=120_000)
    text = page.locator("#what-if-text").inner_text()
    assert text.startswith("With the trigger at +1.0 °C instead of +0.5 °C"), text
    token = page.evaluate("sessionStorage.getItem('placewatch.token')")
    api = httpx.get(
        f"{api_url}/api/v1/reports/season",
        params={"start": "2026-01-12", "end": "2026-01-14", "what_if_trigger_c": "1.0"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    ).json()["what_if"]
    assert text == api["text"]  # the page says what the API answered
    mine = {r["route_id"]: r for r in api["routes"]}[season.routes["a"]]
    row = page.locator("#what-if-table tbody tr", has_text=f"Route {season.routes['a']}").inner_text().split("\t")
    assert row[1:4] == [str(mine["covered"]), str(mine["not_covered"]), str(mine["ice_nights"])], row
    assert row[4] == f"{mine['in_force']['treated']} → {mine['other']['treated']}", row
    total = page.locator("#what-if-table tbody tr.total").inner_text()
    assert total.startswith("All routes"), total
    assert "route-nights covered by the data" in page.locator("#what-if-note").inner_text()
    shoot(page, "reports-what-if-trigger")

    # A policy file instead: its name in the answer.
    page.get_by_label("Trigger (°C road surface temperature)").fill("")
    colder = json.dumps({"trigger_rst_c": -1.0}).encode()
    page.get_by_label("or a policy file (JSON)").set_input_files(
        files=[{"name": "colder.json", "mimeType": "application/json", "buffer": colder}]
    )
    form.get_by_role("button", name="Work out the what-if").click()
    page.locator("#what-if-text", has_text="Under colder.json (trigger -1.0 °C)").wait_for(timeout=120_000)
    assert "colder.json: treat at or below -1.0 °C" in page.locator("#what-if-note").inner_text()
    shoot(page, "reports-what-if-file")
    watch.check()


def test_a_housing_officer_is_not_offered_the_roads_what_if(open_page, api_url: str, season, make_user: Any):
    name, password = make_user("officer", patch=season.patch)
    page, watch = open_page(width=1280)
    sign_in(page, api_url, name, password, lands_on="/officer")
    page.goto(f"{api_url}/reports?start=2026-01-12&end=2026-01-14")
    page.wait_for_selector("#patches-table tbody tr")
    assert "Not computed" in page.locator("#what-if-text").inner_text()
    assert page.locator("#what-if-form").is_hidden()
    watch.check()
