"""A local stand-in for the forecast providers (Open-Meteo, Met Office DataHub site-specific): a threaded HTTP server
on 127.0.0.1 answering in their documented shapes from tests/fixtures/forecasts, or failing as a test asks."""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "forecasts"
FIXTURE_DAY = datetime(2026, 1, 14, tzinfo=UTC)
API_KEY = "test-datahub-key"


def _shift(stamp: str, by: timedelta, fmt: str) -> str:
    return (datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(tzinfo=UTC) + by).strftime(fmt)


class Provider:
    """A local stand-in for the providers: answers what `mode` says, with the fixtures' times moved to start
    two hours before now (the clear, frosty night of the fixtures is tonight)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                headers = {k.lower(): v for k, v in self.headers.items()}  # names are case-insensitive
                provider.requests.append((parts.path, query, headers))
                code, body = provider.answer(parts.path, query, headers)
                self.send_response(code)
                self.send_header("Content-Type", "application/json" if body[:1] in (b"{", b"[") else "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, bytes]:
        by = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2) - FIXTURE_DAY
        if self.mode == "unavailable":
            return 503, b"<html><body>Service Unavailable</body></html>"
        if self.mode == "garbage":
            return 200, b"<html><body>Welcome to the captive portal</body></html>"
        if self.mode == "wrong-shape":
            return 200, json.dumps({"hourly": {"time": ["2026-01-14T00:00"]}}).encode()
        if path.endswith("/forecast"):  # Open-Meteo
            one = json.loads((FIXTURES / "open_meteo_one_location.json").read_text(encoding="utf-8"))
            one["hourly"]["time"] = [_shift(t, by, "%Y-%m-%dT%H:%M") for t in one["hourly"]["time"]]
            lats, lons = query["latitude"][0].split(","), query["longitude"][0].split(",")
            out = []
            for lat, lon in zip(lats, lons, strict=True):
                item = copy.deepcopy(one)
                item["latitude"], item["longitude"] = float(lat), float(lon)
                out.append(item)
            return 200, json.dumps(out[0] if len(out) == 1 else out).encode()
        if headers.get("apikey") != API_KEY:
            return 401, json.dumps({"httpCode": "401", "httpMessage": "Unauthorized"}).encode()
        doc = json.loads((FIXTURES / "met_office_hourly.json").read_text(encoding="utf-8"))
        props = doc["features"][0]["properties"]
        props["modelRunDate"] = _shift(props["modelRunDate"], by, "%Y-%m-%dT%H:%MZ")
        for step in props["timeSeries"]:
            step["time"] = _shift(step["time"], by, "%Y-%m-%dT%H:%MZ")
        return 200, json.dumps(doc).encode()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
