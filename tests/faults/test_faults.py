"""Ingest killed ten times, PostgreSQL down for a minute, Mosquitto restarted: every reading stored exactly once."""

from __future__ import annotations

import pytest

from tests.faults.harness import run

pytestmark = pytest.mark.faults


@pytest.mark.timeout(1800)
def test_every_reading_is_stored_exactly_once_through_kills_outage_and_broker_restart(capsys, engine: str):
    with capsys.disabled():
        result = run(engine=engine, say=lambda line: print(line, flush=True))
        print(result.summary(), flush=True)
    assert not result.unexpected_exits, "ingest exited by itself:\n" + "\n".join(result.unexpected_exits)
    assert result.publisher.get("acked") == result.expected, result.summary()
    assert (result.lost, result.doubled) == (0, 0), result.summary() + "\n" + result.log_tail
    assert (result.extra, result.wrong_values, result.dead_letters) == (0, 0, 0), result.summary()
    assert result.rollup_count == result.expected, "hourly rollup disagrees with the readings\n" + result.summary()
    assert result.final_exit == 0, result.log_tail
