"""bench.ingest's live stream: every time style it sends is RFC 3339 that the native fast lane takes, equal to
the general parser, and every message carries two or three values; the Node-RED peer's database settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from bench.peers.nodered import _pg_config
from bench.peers.stream import payload, time_text, values_per_message
from core.timeparse import parse_rfc3339, rfc3339_us
from ingest.decoders.native import NativeDecoder

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_every_time_style_takes_the_fast_lane_and_equals_the_general_parser():
    t = 1_764_700_000.123456
    styles = {time_text(t, k) for k in range(48)}
    assert any(s.endswith("Z") for s in styles) and any(s.endswith(("+01:00", "-05:00", "+05:30")) for s in styles)
    for text in styles:
        us = rfc3339_us(text)
        assert us is not None, text
        assert us == (parse_rfc3339(text) - _EPOCH) // timedelta(microseconds=1)
        assert 0 <= t * 1e6 - us < 1_000_000  # the same instant, to the precision the style keeps


def test_messages_have_two_or_three_values_and_take_the_fast_lane():
    native = NativeDecoder()
    counts = set()
    for k in range(30):
        body = payload(1_764_700_000.5, k, k)
        rows = native.fast(body)
        assert rows is not None and len(rows) == len(orjson.loads(body)["values"])
        counts.add(len(rows))
    assert counts == {2, 3}
    assert values_per_message(30) == 2 + 10 / 30


def test_node_red_gets_the_connection_string_as_node_postgres_settings():
    assert _pg_config("host=127.0.0.1 port=5432 user=postgres dbname=pw_x") == {
        "host": "127.0.0.1",
        "port": 5432,
        "user": "postgres",
        "database": "pw_x",
    }
    assert _pg_config("postgresql://u:p@db:6543/x") == {
        "host": "db",
        "port": 6543,
        "user": "u",
        "password": "p",
        "database": "x",
    }


def test_the_side_by_side_table_shows_each_engines_ratio_where_a_row_compares():
    from bench.common import Figure
    from bench.ingest import _cell

    # A comparison row's measured value is Placewatch's own total on every comparison row: the ratio is what differs.
    assert _cell(Figure("vs the floor", 32.3, "ms", "floor 9.7", 3.33, "<= 1.5", False)) == "3.33 (target <= 1.5)"
    assert _cell(Figure("receiving", 53.3, "ms", "our client", 2.4, "(issue 15)")) == "2.40"
    assert _cell(Figure("live stream", 32.3, "ms", "ingest + PostgreSQL")) == "32.3 ms"
