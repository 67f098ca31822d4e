"""A duty officer in headless Chromium records a treatment at their discretion on a Monitor route (reason,
spread rate, vehicle, crew, then tonnes) and sees it on the route's card with the note and the history; then
opens the season report, where the run is counted, and its printable view. Screenshots go to /tmp/pw-shots/."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from store import gritting as grit_store
from store.db import connect
from tests.e2e.conftest import shoot, sign_in
from tests.helpers import load, route, station
from tests.season_world import decision_row

pytestmark = pytest.mark.e2e


def test_a_duty_officer_records_a_discretionary_run_with_tonnes_on_a_monitor_route_and_sees_it_counted(
    open_page, api_url: str, database_url: str, make_user: Any
):
    uid = uuid.uuid4().hex[:6]
    rid, dev = f"M-{uid}", f"rws-m-{uid}"
    load(database_url, station(dev), route(rid, [dev], name=f"Hilltop loop {uid}"))
    issued = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with connect(database_url) as conn:
        stored, _ = grit_store.record_decisions(
            conn, decisions=[decision_row(rid, None, "monitor", issued)], evaluated=[rid], at=issued
        )
        conn.commit()
    decision_id = stored[0][0]

    name, password = make_user("highways")
    page, watch = open_page(width=1280)
    sign_in(page, api_url, name, password, lands_on="/highways")
    card_sel = f'article.route[data-route-id="{rid}"]'
    page.wait_for_selector(f'{card_sel} .route__status[data-status="issued"]')
    card = page.locator(card_sel)
    assert "null" not in card.inner_text()  # parts a decision has not got yet are left out, not written "null"

    # Acknowledge: the card still offers a treatment (the officer's call on a Monitor route).
    card.get_by_label("Note (optional)").fill("watching the hill, police on patrol")
    card.locator('button[data-action="acknowledge"]').click()
    page.wait_for_selector(f'{card_sel} .route__status[data-status="acknowledged"]')
    start = card.locator('button[data-action="start"]')
    assert start.inner_text() == "Start a treatment at my discretion" and start.is_enabled()

    # Without a reason the API says why, in words, and nothing changes.
    start.click()
    page.locator("#status", has_text="discretion").wait_for()
    assert "give the reason" in page.locator("#status").inner_text()
    assert card.locator(".route__status").get_attribute("data-status") == "acknowledged"

    card.get_by_label("Reason (needed: the decision does not ask for treatment)").fill(
        "ice reported on the hill by the police"
    )
    card.get_by_label("Spread rate used (g/m²)").fill("8")
    card.get_by_label("Vehicle", exact=True).fill("Gritter 12")
    card.get_by_label("Crew", exact=True).fill("R. Patel")
    card.locator('button[data-action="start"]').click()
    page.wait_for_selector(f'{card_sel} .route__status[data-status="in_progress"]')
    card = page.locator(card_sel)
    assert "Run 1: out since" in card.locator(".runs").inner_text()

    card.get_by_label("Salt used (tonnes)").fill("1.8")
    card.locator('button[data-action="complete"]').click()
    page.wait_for_selector(f'{card_sel} .route__status[data-status="completed"]')
    card = page.locator(card_sel)
    run_text = card.locator(".runs").inner_text()
    for expected in ("8 g/m²", "1.8 t of salt", "vehicle Gritter 12", "crew R. Patel", "ice reported on the hill"):
        assert expected in run_text, run_text
    assert "watching the hill, police on patrol" in card.locator(".notes").inner_text()
    assert card.locator('button[data-action="start"]').inner_text() == "Start another run"
    # The depot weighs the lorry: 2 t, not 1.8.
    card.get_by_label("Salt used (tonnes)").fill("2")
    card.locator('button[data-action="amend"]').click()
    page.locator(f"{card_sel} .notes", has_text="run 1 corrected: salt 1.8 t -> 2 t").wait_for()
    card = page.locator(card_sel)
    assert "2 t of salt" in card.locator(".runs").inner_text()
    card.locator(".route__history summary").click()
    history = card.locator(".route__history").inner_text()
    assert "Acknowledged by" in history and "Run started by" in history and "Run completed by" in history
    card.scroll_into_view_if_needed()
    shoot(page, "highways-discretionary-run")

    token = page.evaluate("sessionStorage.getItem('placewatch.token')")
    d = httpx.get(
        f"{api_url}/api/v1/gritting/decisions/{decision_id}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    (run,) = d["runs"]
    assert (run["discretionary"], run["tonnes"], run["spread_rate_g_m2"], run["vehicle"]) == (
        True,
        2.0,
        8.0,
        "Gritter 12",
    )

    # The season report counts the run (its recorded tonnes) for this route.
    page.goto(f"{api_url}/reports")
    page.wait_for_selector("#routes-table tbody tr")
    page.wait_for_selector("#roads-chart .main-svg")
    row = page.locator("#routes-table tbody tr", has_text=f"Hilltop loop {uid}").inner_text()
    assert "2.00" in row, row  # salt, tonnes (as corrected)
    assert "Not computed" in page.locator("#what-if-text").inner_text()
    assert page.locator("#damp").is_hidden()  # the damp part is for housing officers and admins
    shoot(page, "reports-highways")
    page.emulate_media(media="print")
    assert page.locator("#period").is_hidden() and page.locator("#print-period").is_visible()
    shoot(page, "reports-print")
    watch.check()


def test_the_housing_manager_sees_the_damp_part_and_downloads_its_csv(open_page, api_url: str, season, make_user):
    name, password = make_user("admin")
    page, watch = open_page(width=1280)
    sign_in(page, api_url, name, password, lands_on="/admin")
    page.goto(f"{api_url}/reports?start=2026-01-12&end=2026-01-14")
    page.wait_for_selector("#works-chart .main-svg")
    patch_row = page.locator("#patches-table tbody tr", has_text=season.patch).inner_text()
    assert patch_row.split("\t")[1:] == ["1", "1", "1", "0", "1"], patch_row  # on time, late, overdue, open, not needed
    works = page.locator("#works-table tbody tr", has_text=f"uprn-{season.uid}-c1").inner_text()
    assert "336 / 0" in works and works.rstrip().endswith("Yes"), works
    route_row = page.locator("#routes-table tbody tr", has_text=f"Route {season.routes['a']}").inner_text()
    assert route_row.split("\t")[2:6] == ["2", "1", "1", "1"], route_row  # ice nights, in time, missed, needless
    with page.expect_download() as got:
        page.locator("#csv-homes").click()
    text = open(got.value.path(), encoding="utf-8").read()
    assert text.startswith("case_id,home_id,address,patch,officer,works_completed_at") and season.officer in text
    shoot(page, "reports-admin-season")
    watch.check()
