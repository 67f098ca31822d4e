"""Device health rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.health import DeviceFacts, HealthPolicy, check

NOW = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
P = HealthPolicy()


def facts(**kw) -> DeviceFacts:
    base = {
        "device_id": "rs-1",
        "kind": "road_station",
        "reported_status": "online",
        "last_seen": NOW - timedelta(minutes=5),
        "expected_interval_s": 600,
    }
    return DeviceFacts(**(base | kw))


def codes(f: DeviceFacts) -> list[str]:
    return [p.code for p in check(f, NOW, P)]


def test_a_healthy_device_has_no_problems():
    assert codes(facts()) == []


def test_a_device_that_said_offline_is_offline():
    assert codes(facts(reported_status="offline")) == ["offline"]


def test_silence_past_three_intervals_is_stale():
    assert codes(facts(last_seen=NOW - timedelta(minutes=31))) == ["stale"]
    assert codes(facts(last_seen=NOW - timedelta(minutes=29))) == []


def test_battery_low_by_percent_and_by_volts_never_mixed():
    assert codes(facts(battery_percent=12)) == ["battery_low"]
    assert codes(facts(battery_percent=60)) == []
    assert codes(facts(battery_volts=2.4)) == ["battery_low"]
    assert codes(facts(battery_volts=3.1)) == []


def test_a_road_temperature_unchanged_for_seven_hours_is_stuck():
    [p] = check(facts(flat_for={"road_surface_temperature": timedelta(hours=7)}), NOW, P)
    assert p.code == "stuck" and "7.0 h" in p.message
    assert codes(facts(flat_for={"road_surface_temperature": timedelta(hours=5)})) == []


def test_road_equal_to_air_all_day_is_miswired_but_not_with_few_samples():
    pair = ("road_surface_temperature", "air_temperature")
    assert codes(facts(pair_equal={pair: (1440, 1440)})) == ["miswired"]
    assert codes(facts(pair_equal={pair: (1439, 1440)})) == []
    assert codes(facts(pair_equal={pair: (5, 5)})) == []


def test_a_high_rejection_rate_is_raised():
    assert codes(facts(accepted_last_hour=5, rejected_last_hour=6)) == ["rejections"]
    assert codes(facts(accepted_last_hour=50, rejected_last_hour=6)) == []
    assert codes(facts(accepted_last_hour=0, rejected_last_hour=3)) == []
