"""Ingest's MQTT thread pauses after taking all the socket held (READ_PAUSE_S), never more than a quarter of the
batch age, so that a message waits little for its batch whatever PLACEWATCH_INGEST_BATCH_MS is."""

from __future__ import annotations

from ingest.service import READ_PAUSE_S, IngestService
from placewatch.cli import build_decoders
from placewatch.settings import Settings


def _pause(batch_ms: int) -> float:
    settings = Settings(ingest_batch_ms=batch_ms, environment="test")
    return IngestService(settings, build_decoders(settings), dsn="postgresql://unused/x").client.read_pause_s


def test_the_read_pause_is_ingests_and_at_most_a_quarter_of_the_batch_age():
    assert _pause(200) == READ_PAUSE_S == 0.05
    assert _pause(80) == 0.02
    assert _pause(10_000) == READ_PAUSE_S
