"""Readiness answers through its model with either status: 503 and the same keys when the broker cannot be
reached. An API process of its own whose broker address has nothing listening (the real database)."""

from __future__ import annotations

from typing import Any

import httpx

from placewatch.embedded import free_port
from tests.conftest import service_env, wait_until
from tests.services import start_service


def _live(url: str) -> bool:
    try:
        return httpx.get(url + "/api/v1/live", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_health_is_503_with_its_keys_when_the_broker_is_unreachable(database_url: str, mqtt_broker: Any) -> None:
    port = free_port()
    env = service_env(database_url, mqtt_broker, PLACEWATCH_API_PORT=str(port))
    env["PLACEWATCH_MQTT_URL"] = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    proc = start_service(["api"], env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _live(url), timeout=30)
        r = httpx.get(url + "/api/v1/health", timeout=15)
        assert r.status_code == 503
        body = r.json()
        assert set(body) == {"status", "database", "broker", "version"}
        assert (body["status"], body["database"], body["broker"]) == ("unavailable", "ok", "unreachable")
    finally:
        proc.stop()
