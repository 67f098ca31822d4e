"""The nowcast backtest (GET /api/v1/evaluation/nowcast, `placewatch backtest gritting`) and the nowcast's daily
learning (alerts.nowcast_fit, `placewatch nowcast fit`) on real PostgreSQL, over two autumn weeks of four
high Colorado stations from the shared CoTrip file, loaded the way `placewatch history import` loads it. Station
ids are made unique per test run so tests sharing the run's database never collide."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from alerts.nowcast_fit import NowcastFitter, fit_once, noon_before
from core.gritting import backtest
from core.history import COTRIP, RowReader, parse_mapping
from placewatch.settings import Settings
from store import nowcast as nowcast_store
from store.history import import_history
from tests.services import ROOT

pytestmark = pytest.mark.integration

COLORADO = ROOT.parent / "shared" / "data" / "colorado-rwis-2025-autumn" / "cotrip_rwis_2025-09-15_to_2025-10-27.csv"
STATIONS = ("CO139", "CO138", "CO110", "CO095")  # Fraser Flats, US-34/I-25, CO110, Wolcott: frost in October
FIRST, LAST = "2025-09-28", "2025-10-22"  # readings loaded: a week to learn from before START, the horizons after END
START, END = "2025-10-06", "2025-10-19"
DENVER = "America/Denver"
KEYS = {"n", "mae_c", "bias_c", "hits", "misses", "false_alarms", "correct_negatives", "pod", "far", "csi"}


@pytest.fixture(scope="module")
def stations(database_url: str) -> list[str]:
    """The four stations' readings of FIRST to LAST, loaded by store.history as `placewatch history import` does."""
    if not COLORADO.exists():
        pytest.skip(f"shared data not found at {COLORADO} (the ../shared folder beside the repository)")
    from store.db import connect

    tag = f"N{os.urandom(4).hex()}-"
    with COLORADO.open(newline="") as f:
        rows = csv.reader(f)
        header = next(rows)
        rr = RowReader(parse_mapping(COTRIP), header, now=datetime.now(UTC))
        picked = (
            (n, rr.parse([tag + r[0], *r[1:]]))
            for n, r in enumerate(rows, start=2)
            if r[0] in STATIONS and FIRST <= r[1][:10] <= LAST
        )
        with connect(database_url, autocommit=True) as conn:
            stats = import_history(conn, picked, source="test_nowcast_evaluation")
    assert stats.bad_rows == 0 and len(stats.registered) == len(STATIONS)
    return [tag + s for s in STATIONS]


def _get(api_url: str, headers: dict[str, str], **params: str) -> httpx.Response:
    return httpx.get(api_url + "/api/v1/evaluation/nowcast", params=params, headers=headers, timeout=60)


def _cli(database_url: str, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACEWATCH_")}
    env["PLACEWATCH_DATABASE_URL"] = database_url
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-m", "placewatch.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _check_scores(row: dict[str, Any]) -> None:
    assert KEYS <= set(row)
    assert row["hits"] + row["misses"] + row["false_alarms"] + row["correct_negatives"] == row["n"]


def test_the_backtest_scores_the_nowcast_and_both_baselines_on_the_same_issue_times(api_url, token_for, stations):
    r = _get(
        api_url, token_for("highways"), start=START, end=END, horizons="3,6", issue_hours="17-23", tz=DENVER,
        stations=",".join(stations),
    )  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stations"] == len(stations)
    assert body["trigger_c"] == 0.5  # DOMAIN.md's default policy: the API runs without a policy file
    assert body["tz"] == DENVER and body["issue_hours"] == [17, 18, 19, 20, 21, 22, 23]
    # 14 evenings x 7 hours x 4 stations at most; a station without readings before an hour skips it.
    assert 0 < body["issues"] <= 14 * 7 * 4
    assert [h["hours"] for h in body["horizons"]] == [3, 6]
    # The stations are tagged for this run: not the ids the shipped default was fitted on (see test_in_sample).
    assert body["default_in_sample"] == []
    for h in body["horizons"]:
        _check_scores(h)
        assert 0 < h["n"] <= body["issues"]
        assert set(h["baselines"]) == {"persistence", "linear_trend"}
        for base in h["baselines"].values():
            _check_scores(base)
            assert base["n"] == h["n"]  # scored on the same issue times
        _check_scores(h["ceiling"])
        assert h["ceiling"]["n"] == h["n"] and h["ceiling"]["misses"] == 0 and h["ceiling"]["mae_c"] == 0.0
        assert h["ceiling"]["hits"] == h["hits"] + h["misses"]
    # Those October evenings froze at Fraser Flats: there were events to call.
    six = body["horizons"][1]
    assert six["hits"] + six["misses"] > 0
    # Persistence never calls a freeze the road is still above the trigger for: by 6 h it misses more than
    # the nowcast does.
    assert six["baselines"]["persistence"]["misses"] >= six["misses"]

    one = _get(api_url, token_for("admin"), start=START, end=END, tz=DENVER, stations=stations[0])
    assert one.status_code == 200, one.text
    alone = one.json()
    assert alone["stations"] == 1 and 0 < alone["issues"] < body["issues"]
    assert [h["hours"] for h in alone["horizons"]] == [3, 6]  # the default horizons


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"start": "2025-10-19", "end": "2025-10-06"}, "is before start"),
        ({"start": "2024-01-01", "end": "2025-10-06"}, "longer than 400"),
        ({"start": START, "end": END, "tz": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"start": START, "end": END, "horizons": "3,18"}, "horizon 18 h"),
        ({"start": START, "end": END, "horizons": "three"}, "whole hours ahead"),
        ({"start": START, "end": END, "issue_hours": "17-25"}, "local hours 0-23"),
        ({"start": START, "end": END, "stations": "NO-SUCH-STATION"}, "no road station NO-SUCH-STATION"),
    ],
)
def test_a_bad_request_is_refused_in_words(api_url, token_for, params, words):
    r = _get(api_url, token_for("highways"), **params)
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]


def test_only_highways_staff_and_admins_see_it(api_url, token_for):
    for role in ("officer", "tenant"):
        r = _get(api_url, token_for(role, patch="p") if role == "officer" else token_for(role), start=START, end=END)
        assert r.status_code == 403, r.text
    assert httpx.get(api_url + "/api/v1/evaluation/nowcast", params={"start": START, "end": END}).status_code == 401


def test_the_command_prints_the_same_answer_and_a_table_and_reads_a_policy_file(
    api_url, token_for, database_url, stations, tmp_path
):
    ids = ",".join(stations)
    common = ["backtest", "gritting", "--start", START, "--end", END, "--tz", DENVER, "--stations", ids]
    as_json = _cli(database_url, *common, "--json")
    assert as_json.returncode == 0, as_json.stderr
    api = _get(api_url, token_for("admin"), start=START, end=END, tz=DENVER, stations=ids).json()
    assert json.loads(as_json.stdout) == api

    table = _cli(database_url, *common, "--horizons", "3")
    assert table.returncode == 0, table.stderr
    text = table.stdout
    assert "3 h ahead" in text and "6 h ahead" not in text
    for row in ("nowcast", "persistence", "straight-line trend", "POD", "FAR", "CSI", "false alarms"):
        assert row in text
    assert "at or below +0.5 °C" in text
    assert "In-sample" not in text

    warmer = tmp_path / "policy.json"
    warmer.write_text(json.dumps({"trigger_rst_c": 2.0}))
    out = _cli(database_url, *common, "--policy", str(warmer), "--json")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["trigger_c"] == 2.0
    for h, h_api in zip(body["horizons"], api["horizons"], strict=True):
        # A warmer trigger calls at least as often: never fewer hits or false alarms, the same events.
        assert h["n"] == h_api["n"] and h["hits"] >= h_api["hits"] and h["false_alarms"] >= h_api["false_alarms"]
        assert h["hits"] + h["misses"] == h_api["hits"] + h_api["misses"]

    refused = _cli(database_url, "backtest", "gritting", "--start", END, "--end", START)
    assert refused.returncode == 1 and "is before start" in refused.stderr


def test_the_daily_learning_stores_each_stations_correction_and_a_second_run_changes_nothing(
    db, database_url, stations
):
    def stored() -> list[tuple[Any, ...]]:
        return db.execute(
            "SELECT station_id, fitted_at, model_fitted_at, params FROM nowcast_stations WHERE station_id = ANY(%s) "
            "ORDER BY station_id",
            (stations,),
        ).fetchall()

    assert stored() == []
    noon = datetime(2025, 10, 21, 12, 0, tzinfo=ZoneInfo(DENVER))
    first = fit_once(db, now=noon, zone=ZoneInfo(DENVER), station_ids=stations)
    assert first.model == "default"  # two weeks of four stations are far fewer hours than a refit needs
    assert first.stations_read == len(stations) and sorted(first.stations) == sorted(stations)
    rows = stored()
    assert [r[0] for r in rows] == sorted(stations)
    for _, fitted_at, _, params in rows:
        assert fitted_at == noon
        assert params["nights"] >= 14 and len(params["mean_error"]) == len(first.horizons)
        assert params["memory"]  # the evenings the reasons compare tonight with
    learned = nowcast_store.load_stations(db, stations)
    assert {s: learned[s].nights for s in stations} == {s: first.stations[s].nights for s in stations}
    assert "stations learned their own correction" in "\n".join(first.lines())

    again = fit_once(db, now=noon, zone=ZoneInfo(DENVER), station_ids=stations)
    assert again.stations.keys() == first.stations.keys()
    assert stored() == rows

    # The command runs the same learning (local hours in the council's zone) and says what it did.
    ids = ",".join(stations)
    out = _cli(
        database_url, "nowcast", "fit", "--stations", ids, "--at", noon.isoformat(), PLACEWATCH_LOCAL_ZONE=DENVER
    )
    assert out.returncode == 0, out.stderr
    assert f"{len(stations)} stations learned their own correction" in out.stdout
    assert "Fraser Flats" in out.stdout or stations[0] in out.stdout
    assert stored() == rows
    # Learned today: the scheduler's job waits for tomorrow's noon.
    assert not NowcastFitter(Settings(local_zone=DENVER)).due(db, noon + timedelta(hours=3))


def test_with_enough_own_nights_the_pooled_model_is_refitted_and_not_again_before_it_is_due(db, stations, monkeypatch):
    monkeypatch.setattr(backtest, "MIN_OWN_EXAMPLES", 500)  # four stations' three weeks stand in for a winter
    zone = ZoneInfo(DENVER)
    noon = datetime(2025, 10, 21, 12, 0, tzinfo=zone)
    try:
        first = fit_once(db, now=noon, zone=zone, station_ids=stations)
        assert first.model == "refitted" and first.own_examples >= 500
        assert first.model_trained_on["stations"] == len(stations)
        model = nowcast_store.latest_model(db)
        assert model is not None and model.fitted_at == noon and model.trained_on["stations"] == len(stations)
        rows = db.execute(
            "SELECT model_fitted_at FROM nowcast_stations WHERE station_id = ANY(%s)", (stations,)
        ).fetchall()
        assert rows == [(noon,)] * len(stations)  # each station's correction is against the model now in force
        # A day later the week is not over: the stored model stays.
        later = fit_once(db, now=noon + timedelta(days=1), zone=zone, station_ids=stations)
        assert later.model == "stored" and later.model_fitted_at == noon
        assert db.execute("SELECT count(*) FROM nowcast_models WHERE fitted_at = %s", (noon,)).fetchone() == (1,)
    finally:
        db.execute("DELETE FROM nowcast_models WHERE trained_on->>'stations' = %s", (str(len(stations)),))
        db.execute("DELETE FROM nowcast_stations WHERE station_id = ANY(%s)", (stations,))


def test_station_series_gives_each_measurement_of_a_road_station_as_arrays_at_its_place(db, stations):
    since = datetime(2025, 10, 1, tzinfo=UTC)
    until = datetime(2025, 10, 8, tzinfo=UTC)
    got = nowcast_store.station_series(db, station_ids=[stations[0], "NO-SUCH-STATION"], since=since, until=until)
    assert [s.station_id for s in got] == [stations[0]]
    s = got[0]
    assert s.lat == pytest.approx(39.99, abs=0.01) and s.lon == pytest.approx(-105.83, abs=0.01)  # Fraser Flats
    for metric, t, v in (("road_surface_temperature", s.rst_t, s.rst_v), ("air_temperature", s.air_t, s.air_v)):
        rows = db.execute(
            """SELECT extract(epoch FROM r.ts)::int8, r.value FROM readings r JOIN series x ON x.id = r.series_id
               WHERE x.device_id = %s AND x.metric = %s AND r.ts BETWEEN %s AND %s ORDER BY r.ts""",
            (stations[0], metric, since, until),
        ).fetchall()
        assert len(rows) > 200
        assert t.tolist() == [r[0] for r in rows] and v.tolist() == [r[1] for r in rows]


def test_the_daily_learning_is_due_from_noon_local():
    zone = ZoneInfo("Europe/London")  # 29 March 2026: the clocks go forward, noon is 11:00 UTC
    assert noon_before(datetime(2026, 3, 29, 10, 59, tzinfo=UTC), zone) == datetime(2026, 3, 28, 12, tzinfo=zone)
    assert noon_before(datetime(2026, 3, 29, 11, 0, tzinfo=UTC), zone) == datetime(2026, 3, 29, 12, tzinfo=zone)
