"""Headless Chromium (Debian's, driven by Playwright: no browser download) against the real API process.

Every page is opened under a strict Content-Security-Policy (the app's own if it sends one, else ours) with
every request leaving the API's origin blocked and recorded: a page that needs a CDN, tiles, web fonts, an
inline script or eval fails its test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("PLACEWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
]
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SHOTS = Path(os.environ.get("PLACEWATCH_SCREENSHOTS", "/tmp/pw-shots"))


@dataclass
class Watch:
    """What the pages of one test did that they should not: outside requests, console errors, CSP breaches."""

    origin: str
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    api_calls: list[tuple[str, int]] = field(default_factory=list)

    def check(self) -> None:
        """Fail on any of them."""
        assert not self.outside, f"pages asked for something outside the API: {self.outside}"
        assert not self.errors, f"console errors or CSP violations: {self.errors}"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless."""
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium): the browser tests need it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def open_page(browser: Any, api_url: str) -> Iterator[Any]:
    """open_page(width=1280) -> (page, watch): a fresh context (no session) watched for bad behaviour."""
    contexts: list[Any] = []
    watches: list[Watch] = []

    def make(width: int = 1280, height: int = 900) -> tuple[Any, Watch]:
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale="en-GB", service_workers="block")
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        watch = Watch(api_url)
        watches.append(watch)

        def guard(route: Any) -> None:
            url = route.request.url
            if not url.startswith(api_url + "/"):
                watch.outside.append(url)
                route.abort()
                return
            response = route.fetch()
            headers = dict(response.headers)
            if "text/html" in headers.get("content-type", "") and "content-security-policy" not in headers:
                headers["content-security-policy"] = CSP
            route.fulfill(response=response, headers=headers)

        ctx.route("**/*", guard)
        page = ctx.new_page()
        page.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: watch.errors.append(f"uncaught: {e}"))

        def seen(response: Any) -> None:
            if "/api/v1/" in response.url or "/open-data/" in response.url:
                watch.api_calls.append((response.url[len(api_url) :], response.status))

        page.on("response", seen)
        return page, watch

    yield make
    for ctx in contexts:
        ctx.close()


def shoot(page: Any, name: str) -> Path:
    """A full-page screenshot into SHOTS (default /tmp/pw-shots/)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, api_url: str, name: str, password: str, *, lands_on: str) -> None:
    """Sign in on /login with the keyboard (Enter submits) and wait for the page the role lands on."""
    page.goto(f"{api_url}/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(f"{api_url}{lands_on}")
