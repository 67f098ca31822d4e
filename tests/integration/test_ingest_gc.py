"""Ingest, while it runs, lets a batch's objects be freed before the garbage collector looks at them, and keeps what
exists at start-up out of the collector's generations; it puts the collector back as it was when it stops."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest
from pydantic import SecretStr

from ingest.service import GC_YOUNG, IngestService
from placewatch.cli import build_decoders
from placewatch.settings import Settings

pytestmark = pytest.mark.integration


def test_ingest_tunes_the_collector_while_running_then_restores(database_url: str, mqtt_broker: Any, uid: str) -> None:
    settings = Settings(
        database_url=SecretStr(database_url),
        mqtt_url=mqtt_broker.url,
        mqtt_protocol=mqtt_broker.protocol,
        mqtt_client_id=f"pw-test-gc-{uid}",
        metrics_port=0,
        environment="test",
    )
    service = IngestService(settings, build_decoders(settings), dsn=database_url)
    before = gc.get_threshold()
    assert before[0] != GC_YOUNG
    stop = threading.Event()
    runner = threading.Thread(target=service.run, args=(stop,), daemon=True)
    runner.start()
    try:
        assert service.subscribed.wait(30), "ingest did not subscribe"
        assert gc.get_threshold() == (GC_YOUNG, *before[1:])
        assert gc.get_freeze_count() > 0
        assert all(o is not service._known for o in gc.get_objects())  # frozen, though it grows
    finally:
        stop.set()
        runner.join(30)
        gc.unfreeze()
    assert not runner.is_alive()
    assert gc.get_threshold() == before
