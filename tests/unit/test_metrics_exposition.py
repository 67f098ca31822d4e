"""The Prometheus exposition (placewatch/metrics.py) is prometheus-client's text format: escaping, number
formatting and counters as the library writes them, and every family reads back through the library's parser
with the same names, labels and values. The scrapes themselves are tested through real processes in
tests/integration/test_metrics.py."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingest.service import Counters
from placewatch.metrics import CONTENT_TYPE, INGEST_COUNTERS, Metric, ingest_metrics, render


def test_the_exposition_escapes_label_values_and_help_text() -> None:
    text = render(
        [
            Metric("placewatch_x", "gauge", "a help\\line\nwith a break").add(1.5, id='a "quoted"\\id\nx'),
            Metric("placewatch_y_total", "counter", "plain").add(3).add(float("nan"), kind="odd"),
        ]
    )
    assert text.splitlines() == [
        "# HELP placewatch_x a help\\\\line\\nwith a break",
        "# TYPE placewatch_x gauge",
        'placewatch_x{id="a \\"quoted\\"\\\\id\\nx"} 1.5',
        "# HELP placewatch_y_total plain",
        "# TYPE placewatch_y_total counter",
        "placewatch_y_total 3.0",  # prometheus-client writes every value as a float
        'placewatch_y_total{kind="odd"} NaN',
    ]


def test_the_families_read_back_through_prometheus_clients_parser_unchanged() -> None:
    counters = Counters(received=7, committed_messages=6, committed_readings=11, dead_lettered=1, batches=2)
    counters.last_batch_ms, counters.connected = 12.5, True
    metrics = [
        *ingest_metrics(counters, queue_depth=3),
        Metric("placewatch_devices", "gauge", "Devices by kind and status.")
        .add(2, kind="road_station", status="online")
        .add(1, kind="home_sensor", status="stale"),
        Metric("placewatch_database_up", "gauge", "1 when the database answered.").add(True),
        Metric("placewatch_readings", "gauge", "Readings.").add(12_345_678_901),
        Metric("placewatch_forecast_provider_last_success_age_seconds", "gauge", "Age.").add(math.inf, provider="x"),
    ]
    read = {f.name: f for f in text_string_to_metric_families(render(metrics))}
    for m in metrics:
        family = read[m.name.removesuffix("_total") if m.kind == "counter" else m.name]
        assert family.type == m.kind and family.documentation == m.help
        assert [(s.name, s.labels, s.value) for s in family.samples] == [
            (m.name, dict(labels), float(value)) for labels, value in m.samples
        ]
    assert {name for name, _, _ in INGEST_COUNTERS.values()} <= {m.name for m in metrics}
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_a_counter_is_named_with_total() -> None:
    with pytest.raises(ValueError, match="_total"):
        Metric("placewatch_received", "counter", "Messages received.")
