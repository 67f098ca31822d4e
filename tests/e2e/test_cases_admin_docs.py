"""Issue 14's journeys in headless Chromium, against a real API process started with the council's own contact
settings: an officer is shown an unowned case in red, takes it on from their home view and books a visit; the tenant
sees the council's phone, the report-a-repair link and that visit; an admin adds a user and sees a stale device and
a patch with nobody to look after it; /docs and /redoc render with every request off the loopback address blocked.
Screenshots go to /tmp/pw-shots/."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from placewatch.embedded import free_port
from store.db import connect
from tests.conftest import service_env
from tests.e2e.conftest import SHOTS, shoot, sign_in
from tests.e2e.world import Town, build_town, forget_readings
from tests.services import start_service

pytestmark = pytest.mark.e2e

RED = "rgb(164, 22, 26)"  # --danger in app.css
PHONE = "0117 922 2000"
REPAIRS = "https://www.example.gov.uk/report-a-repair"


@pytest.fixture(scope="module")
def api_url(database_url: str, mqtt_broker: Any) -> Iterator[str]:
    """`placewatch api` for this module, with the council's contact configured (overrides the session's API)."""
    port = free_port()
    env = service_env(
        database_url,
        mqtt_broker,
        PLACEWATCH_API_PORT=str(port),
        PLACEWATCH_COUNCIL_NAME="Bristol City Council",
        PLACEWATCH_COUNCIL_PHONE=PHONE,
        PLACEWATCH_COUNCIL_EMAIL="housing@example.gov.uk",
        PLACEWATCH_REPAIR_URL=REPAIRS,
    )
    proc = start_service(["api"], env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/api/v1/live", timeout=1)
            break
        except httpx.HTTPError:
            if proc.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("api did not start:\n" + proc.log()) from None
            time.sleep(0.1)
    yield url
    proc.stop()


@pytest.fixture(scope="module")
def town(database_url: str, mqtt_broker: Any, api_url: str) -> Iterator[Town]:
    """The e2e world, its cases opened while its patches had no officer."""
    town = build_town(database_url, mqtt_broker, uuid.uuid4().hex[:6])
    yield town
    forget_readings(database_url, town.devices)


def test_an_officer_is_shown_an_unowned_case_in_red_takes_it_on_and_books_a_visit_the_tenant_sees(
    open_page, api_url: str, town: Town, make_user: Any
):
    name, password = make_user("officer", patch=town.patch)  # joined after the cases opened: nobody owns them
    page, watch = open_page(width=1280)
    sign_in(page, api_url, name, password, lands_on="/officer")
    case_id = town.cases["red"]
    row = page.locator(f'#homes tr[data-home="{town.homes["red"]}"]')
    row.wait_for()
    owner = row.locator("td.owner")
    assert owner.inner_text().strip() == "Nobody"
    assert owner.evaluate("(e) => getComputedStyle(e).color") == RED
    assert "is-unowned" in (row.get_attribute("class") or "")
    banner = page.locator("#patch-problems")
    assert banner.is_visible() and "Nobody is notified of new or overdue cases" in banner.inner_text()
    assert banner.evaluate("(e) => getComputedStyle(e).color") == RED
    block = page.locator(f"#case-{case_id}")
    assert "is-unowned" in (block.get_attribute("class") or "")
    assert block.evaluate("(e) => getComputedStyle(e).borderLeftColor") == RED
    shoot(page, "officer-unowned")

    # The officer's own view of the home: charts, the case, only the actions that may come next.
    row.locator("td a").first.click()
    page.wait_for_url(f"{api_url}/officer/home?home=*")
    page.wait_for_selector("#temperature-chart.js-plotly-plot .main-svg")
    problem = page.locator("#case .owner-problem")
    assert problem.inner_text().strip() == "No officer is responsible for this case: assign one."
    options = page.locator("#case select[name=action] option").all_inner_texts()
    assert options[0] == "Choose an action"
    assert not any("summary" in o.lower() for o in options)  # follows the investigation: not offered yet
    assert "Acknowledge the report (the tenant has been contacted)" in options
    page.get_by_label("Make responsible").select_option(name)
    page.get_by_role("button", name="Assign").click()
    page.wait_for_function(f"() => document.getElementById('status').textContent.includes('{name} is now responsible')")
    assert page.locator("#case .owner-problem").count() == 0
    assert page.locator("#case dd.owner").inner_text() == name
    shoot(page, "officer-home-view")

    visit = (datetime.now(UTC) + timedelta(days=3)).astimezone().replace(hour=10, minute=30, second=0, microsecond=0)
    page.get_by_label("Book a visit for", exact=True).fill(visit.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("What the tenant is told (optional)").fill("Sam from the repairs team, to look at the mould")
    page.get_by_role("button", name="Book the visit").click()
    page.wait_for_function("() => document.getElementById('status').textContent.includes('visit booked for')")
    assert "Sam from the repairs team" in page.locator("#case dd.next-visit").inner_text()
    # A refusal comes back in words, never as a code.
    token = page.evaluate("sessionStorage.getItem('placewatch.token')")
    r = httpx.post(
        f"{api_url}/api/v1/damp/cases/{case_id}/actions",
        headers={"Authorization": f"Bearer {token}"},
        json={"action": "works_started"},
    )
    assert r.status_code == 409 and "_" not in r.json()["detail"]
    watch.check()

    tenant, tenant_password = make_user("tenant", home=town.homes["red"])
    phone_page, phone_watch = open_page(width=390, height=844)
    sign_in(phone_page, api_url, tenant, tenant_password, lands_on="/tenant")
    phone_page.wait_for_selector("#visit-panel:not([hidden])")
    assert "Your landlord will visit on" in phone_page.locator("#visit-when").inner_text()
    assert "10:30" in phone_page.locator("#visit-when").inner_text()
    assert phone_page.locator("#visit-note").inner_text() == "Sam from the repairs team, to look at the mould"
    contact = phone_page.locator("#contact").inner_text()
    assert PHONE in contact and "housing@example.gov.uk" in contact
    assert phone_page.locator("#repair-link").get_attribute("href") == REPAIRS
    assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shoot(phone_page, "tenant-phone-visit")
    phone_watch.check()


def test_an_admin_adds_a_user_and_sees_a_stale_device_and_a_patch_nobody_looks_after(
    open_page, api_url: str, town: Town, make_user: Any, database_url: str
):
    unknown = f"rws-new-{town.uid}"
    with connect(database_url, autocommit=True) as conn:
        # Last seen three days ago: the device row and its state row (where ingest marks it seen, migration 0026).
        conn.execute("UPDATE devices SET last_seen = now() - interval '3 days' WHERE id = %s", (town.station,))
        conn.execute(
            "UPDATE device_state SET seen_at = now() - interval '3 days' WHERE device_id = %s", (town.station,)
        )
        conn.execute(
            """INSERT INTO dead_letters (received_at, topic, payload, reason, device_id, format)
               VALUES (now(), %s, %s, 'unknown device: not in the registry', %s, 'native')""",
            (f"placewatch/v1/devices/{unknown}/readings", b'{"values": {"road_surface_temperature": 0.4}}', unknown),
        )
    name, password = make_user("admin")
    page, watch = open_page(width=1280)
    sign_in(page, api_url, name, password, lands_on="/admin")
    small = page.locator(f'#patches tr[data-patch="{town.small_patch}"]')
    small.wait_for()
    assert "No housing officer looks after this patch" in small.inner_text()
    assert "is-problem" in (small.get_attribute("class") or "")

    page.get_by_label("Status").select_option("stale")
    page.get_by_label("Name or id contains").fill(town.uid)
    page.get_by_label("Name or id contains").press("Enter")
    page.wait_for_selector(f'#devices[data-query="status=stale&q={town.uid}"]')
    stale = page.locator(f'#devices tr[data-device="{town.station}"]')
    stale.wait_for()
    assert stale.get_attribute("data-status") == "stale"
    assert "Stale: not heard from recently" in stale.inner_text() and "3 days ago" in stale.inner_text()
    shown = page.locator("#devices tr[data-device]").evaluate_all("(rs) => rs.map((r) => r.dataset.status)")
    assert shown and set(shown) == {"stale"}  # the station, and the late home's sensors (three weeks quiet)
    shoot(page, "admin-devices-stale")

    officer = f"officer-{town.uid}"
    page.get_by_label("User name").fill(officer)
    page.get_by_label("Role").select_option("officer")
    page.get_by_label("Patch (for a housing officer)").fill(town.small_patch)
    page.get_by_label("Email (optional: notifications go here)").fill(f"{officer}@example.gov.uk")
    page.get_by_label("Password (at least 8 characters)").fill("a-long-password")
    page.get_by_role("button", name="Add the user").click()
    page.wait_for_function(f"() => document.getElementById('status').textContent.includes('User {officer} added')")
    added = page.locator(f'#users tr[data-user="{officer}"]')
    assert f"Patch {town.small_patch}" in added.inner_text()
    small = page.locator(f'#patches tr[data-patch="{town.small_patch}"]')
    assert officer in small.inner_text() and "No housing officer" not in small.inner_text()
    r = httpx.post(f"{api_url}/api/v1/auth/token", data={"username": officer, "password": "a-long-password"})
    assert r.status_code == 200
    shoot(page, "admin-user-added")

    # An unknown device added to the registry as the road station its messages say it is.
    page.locator(f'#quarantine tr[data-device="{unknown}"]').get_by_role("button", name="Add to registry").click()
    assert page.locator("#add-kind").input_value() == "road_station"
    page.get_by_label("Name (what people read)").fill(f"New Road {town.uid}")
    page.get_by_label("Longitude (for example −1.8904)").fill("-2.5601")
    page.get_by_label("Latitude (for example 52.4862)").fill("51.4402")
    page.get_by_role("button", name="Add to the registry").click()
    page.wait_for_function(f"() => document.getElementById('status').textContent.includes('{unknown} added')")
    assert page.locator(f'#quarantine tr[data-device="{unknown}"]').count() == 0
    with connect(database_url) as conn:
        row = conn.execute("SELECT kind, name FROM devices WHERE id = %s", (unknown,)).fetchone()
    assert row == ("road_station", f"New Road {town.uid}")
    watch.check()


@pytest.mark.parametrize(
    ("path", "ready"), [("/docs", ".swagger-ui .info .title"), ("/redoc", "redoc-wrap h1, .api-info h1")]
)
def test_the_api_docs_render_with_no_internet(open_page, api_url: str, path: str, ready: str):
    page, watch = open_page(width=1280)  # every request off the API's loopback address is aborted and recorded
    page.goto(f"{api_url}{path}")
    title = page.locator(ready).first
    title.wait_for(timeout=30_000)
    assert "Placewatch" in title.inner_text()
    if path == "/docs":
        page.wait_for_selector('[id^="operations-damp-assign"]')  # the operations are listed
    else:
        page.locator("h2", has_text="Make a housing officer of the home's patch responsible for a case").wait_for()
    SHOTS.mkdir(parents=True, exist_ok=True)  # the top of the page: ReDoc's whole page is too tall to shoot quickly
    page.screenshot(path=str(SHOTS / f"docs{path.replace('/', '-')}.png"))
    assert watch.outside == []
    watch.check()
