"""Prometheus exposition through prometheus-client, and a tiny HTTP server for it.

The API serves GET /metrics itself (api/routers/metrics.py); ingest, which has no HTTP server, starts
`MetricsServer` on PLACEWATCH_METRICS_PORT. Both build a list of Metric, read fresh for each scrape, and
render it here: a Collector over that list, written by prometheus-client's text exposition (format 0.0.4).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric as Family
from prometheus_client.registry import Collector

log = logging.getLogger("placewatch.metrics")
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


@dataclass(slots=True)
class Metric:
    """One metric family: a name, a type, a help line and its samples (labels, value)."""

    name: str
    kind: Literal["counter", "gauge"]
    help: str
    samples: list[tuple[Mapping[str, str], float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name!r}: a counter's name ends in _total")

    def add(self, value: float, **labels: str) -> Metric:
        """Add a sample; returns self so one-sample metrics read as one expression."""
        self.samples.append((labels, value))
        return self

    def family(self) -> Family:
        """This metric as prometheus-client's family (a counter's family drops _total; its samples keep it)."""
        out = (CounterMetricFamily if self.kind == "counter" else GaugeMetricFamily)(self.name, self.help)
        for labels, value in self.samples:
            out.add_sample(self.name, {k: str(v) for k, v in labels.items()}, float(value))
        return out


class Snapshot(Collector):
    """Metrics already read, as a prometheus-client Collector."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterator[Family]:
        for m in self._metrics:
            yield m.family()


def render(metrics: Iterable[Metric]) -> str:
    """The metrics in the text exposition format."""
    return generate_latest(Snapshot(metrics)).decode()


# Ingest's Counters (ingest/service.py): field -> (metric name, type, help).
INGEST_COUNTERS: dict[str, tuple[str, Literal["counter", "gauge"], str]] = {
    "received": ("placewatch_ingest_received_total", "counter", "Messages received from the broker."),
    "committed_messages": (
        "placewatch_ingest_committed_messages_total",
        "counter",
        "Messages whose readings or dead letter are committed (then acknowledged).",
    ),
    "committed_readings": ("placewatch_ingest_committed_readings_total", "counter", "New readings committed."),
    "duplicates": ("placewatch_ingest_duplicate_readings_total", "counter", "Readings already stored (redeliveries)."),
    "dead_lettered": ("placewatch_ingest_dead_lettered_total", "counter", "Dead letters committed."),
    "batches": ("placewatch_ingest_batches_total", "counter", "Batches committed."),
    "db_errors": ("placewatch_ingest_db_errors_total", "counter", "Failed database connections and writes."),
}


def ingest_metrics(counters: Any, queue_depth: int) -> list[Metric]:
    """Ingest's running totals and state as metrics."""
    out = [
        Metric(name, kind, text).add(int(getattr(counters, attr)))
        for attr, (name, kind, text) in INGEST_COUNTERS.items()
    ]
    out.append(
        Metric("placewatch_ingest_queue_depth", "gauge", "Messages received and not yet committed.").add(queue_depth)
    )
    out.append(
        Metric("placewatch_ingest_last_batch_seconds", "gauge", "Time the last batch took to commit.").add(
            float(counters.last_batch_ms) / 1000.0
        )
    )
    out.append(
        Metric("placewatch_ingest_broker_connected", "gauge", "1 while connected to the broker.").add(
            1 if counters.connected else 0
        )
    )
    return out


class MetricsServer:
    """A background HTTP server answering GET /metrics with whatever collect() returns."""

    def __init__(self, host: str, port: int, collect: Callable[[], list[Metric]]) -> None:
        handler = _handler(collect)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> MetricsServer:
        """Serve in a daemon thread."""
        self._thread.start()
        log.info("serving metrics at http://%s:%d/metrics", self.httpd.server_address[0], self.port)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(collect: Callable[[], list[Metric]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self._send(404, b"not found: the metrics are at /metrics\n", "text/plain; charset=utf-8")
                return
            try:
                body = render(collect()).encode()
            except Exception:
                log.exception("collecting metrics failed")
                self._send(500, b"collecting metrics failed\n", "text/plain; charset=utf-8")
                return
            self._send(200, body, CONTENT_TYPE)

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("metrics %s", format % args)

    return Handler
