"""Which stored station readings the gritting rules see (core.gritting.samples), without services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.gritting.samples import station_obs, station_sample
from core.physics import dew_point

T = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)


def row(minutes=0, rst=None, air=None, dew=None, state=None, fp=None, rh=None):
    return (T + timedelta(minutes=minutes), rst, air, dew, state, fp, rh)


def test_a_missing_dew_point_is_derived_from_air_and_humidity():
    s = station_sample(row(air=2.0, rh=90.0))
    assert s is not None and s.dew_point == pytest.approx(dew_point(2.0, 90.0))
    assert s.dew_point == pytest.approx(0.5, abs=0.2)


def test_a_reported_dew_point_is_kept():
    s = station_sample(row(air=2.0, dew=-4.0, rh=90.0))
    assert s is not None and s.dew_point == -4.0


@pytest.mark.parametrize("rh", [None, 0.0])
def test_no_dew_point_without_a_humidity_above_zero(rh):
    s = station_sample(row(rst=1.0, air=2.0, rh=rh))
    assert s is not None and s.dew_point is None


def test_a_surface_state_the_rules_do_not_know_is_dropped():
    s = station_sample(row(rst=0.5, state="slushy"))
    assert s is not None and s.surface_state is None and s.road_surface_temperature == 0.5
    known = station_sample(row(rst=0.5, state=" Ice "))
    assert known is not None and known.surface_state == "ice"


@pytest.mark.parametrize(
    "nothing",
    [row(rh=80.0), row(state="slushy"), row(state="slushy", rh=0.0), row()],
)
def test_a_row_with_nothing_the_rules_read_is_left_out(nothing):
    assert station_sample(nothing) is None


@pytest.mark.parametrize("one", [row(rst=1.0), row(air=1.0), row(dew=1.0), row(state="wet"), row(fp=-2.0)])
def test_any_one_value_the_rules_read_keeps_the_row(one):
    assert station_sample(one) is not None


def test_a_station_s_rows_become_its_observations_in_time_order():
    obs = station_obs(
        "RWS-1",
        [row(20, rst=0.4), row(10, rh=85.0), row(0, rst=1.2, air=3.0, rh=80.0)],
        "Hagley Road",
        (52.47, -1.95),
    )
    assert obs.station_id == "RWS-1" and obs.name == "Hagley Road" and (obs.lat, obs.lon) == (52.47, -1.95)
    assert [s.ts for s in obs.samples] == [T, T + timedelta(minutes=20)]
    assert obs.samples[0].dew_point == pytest.approx(dew_point(3.0, 80.0))
    assert station_obs("RWS-2", []).samples == () and station_obs("RWS-2", []).lat is None
