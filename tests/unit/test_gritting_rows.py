"""A gritting decision is defined once as a row (store.gritting.DecisionRow): the SQL reads its fields, the API's
models are made from it, and the MQTT alert is the same JSON as the API's, times in the one format (utc_z)."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.routers import gritting as api
from core.gritting import Decision
from core.gritting.vocab import DecisionStatus, GrittingAction
from core.jsonready import json_ready
from store import gritting as store

SUMMER = ZoneInfo("Europe/London")  # PostgreSQL gives times in the session's zone: BST must still come out UTC
T = datetime(2026, 7, 1, 19, 30, tzinfo=SUMMER)


def _row(**over: object) -> store.DecisionRow:
    values: dict[str, object] = {
        "id": 7, "route_id": "P1", "route_name": "P1 A456", "action": "salt", "rule": "ice_on_road",
        "spread_rate_g_m2": 15.0, "passes": 1, "spread_type": "dry", "call_out_by": T, "treat_now": False,
        "late": False, "reasons": ["Ice at station S1."], "message": "m", "confidence": 0.8, "horizon_hours": 0.0,
        "issued_at": T - timedelta(hours=1), "status": "issued", "status_at": T - timedelta(hours=1),
        "status_by": "evaluator",
    }  # fmt: skip
    return store.DecisionRow(**(values | over))  # type: ignore[arg-type]


def test_what_core_decides_is_stored_but_for_the_fields_that_are_not_a_record_s():
    # A new field of core's Decision is stored when the decisions table has a column of its name (and the
    # row a field); else it is named here as not recorded.
    not_recorded = {"decided_at", "covered_until", "material_rounding_minutes"}  # decided_at is issued_at
    assert {f.name for f in fields(Decision)} - set(store._DECIDED) == not_recorded


def test_a_new_decision_gives_every_stored_column_with_z_times():
    d = Decision(route_id="P1", action="salt", rule="ice_on_road", decided_at=T, call_out_by=T, reasons=("r",))
    record = store.NewDecision(decision=d, previous_id=3, message="m", evidence={"at": T}).record()
    assert set(record) == {*store._STORED, "forecast_id"}
    assert record["issued_at"] == record["call_out_by"] == "2026-07-01T18:30:00Z"
    assert record["evidence"] == {"at": "2026-07-01T18:30:00Z"} and record["reasons"] == ["r"]


@pytest.mark.parametrize(
    ("row", "model"),
    [
        (store.DecisionRow, api.DecisionOut),
        (store.DecisionCard, api.CurrentDecision),
        (store.DecisionDetail, api.DecisionDetail),
        (store.RunRow, api.RunOut),
        (store.EventRow, api.EventOut),
        (store.RouteView, api.RouteOut),
    ],
)
def test_the_api_models_are_the_store_rows(row: type, model: type) -> None:
    assert list(model.model_fields) == [f.name for f in fields(row)]
    for f in fields(row):
        assert model.model_fields[f.name].description == f.metadata.get("description")


def test_the_mqtt_alert_is_the_api_s_json_with_utc_z_times():
    row = _row(min_rst_at=T + timedelta(hours=3, microseconds=250_000))
    api_json = api.DecisionOut.model_validate(asdict(row)).model_dump(mode="json")
    assert api_json == json_ready(row)  # the retained alert's body (alerts.gritting publishes json_ready(row))
    assert api_json["call_out_by"] == "2026-07-01T18:30:00Z"
    assert api_json["min_rst_at"] == "2026-07-01T21:30:00.250000Z"
    assert api_json["action"] == "salt" and api_json["reasons"] == ["Ice at station S1."]


def test_a_route_card_s_nested_times_are_utc_z_too():
    run = store.RunRow(
        id=1, route_id="P1", decision_id=7, started_under=7, number=1, discretionary=False, status="in_progress",
        started_at=T, started_by="asha",
    )  # fmt: skip
    card = store.DecisionCard(**{f.name: getattr(_row(), f.name) for f in fields(store.DecisionRow)}, runs=(run,))
    route = store.RouteView(
        id="P1", name="A456", priority=1, treatment_minutes=180, mobilisation_minutes=60, stations=["S1"],
        evaluated_at=T, decision=card,
    )  # fmt: skip
    out = api.RouteOut.model_validate(asdict(route)).model_dump(mode="json")
    assert out["evaluated_at"] == out["decision"]["runs"][0]["started_at"] == "2026-07-01T18:30:00Z"
    assert out["stations"] == ["S1"] and out["decision"]["history"] == []


def test_the_rows_hold_the_vocabulary_not_bare_strings():
    row = _row()
    assert isinstance(row.action, GrittingAction) and isinstance(row.status, DecisionStatus)
    assert row.reasons == ("Ice at station S1.",)
    with pytest.raises(ValueError):
        _row(status="Issued")


def test_a_stored_forecast_core_refuses_is_a_problem_for_its_route_not_an_error_for_every_route():
    at = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    good = store._stored_forecast(
        route_id="P1", id=4, source="met", domain=None, issued_at=at, min_rst=-1.0, min_rst_at=at,
        precipitation="none", precipitation_mm=None, precipitation_start=None, precipitation_end=None,
        dew_point=None, rst_trace=[["2026-01-15T13:00:00Z", -0.5]],
    )  # fmt: skip
    assert good.problem is None and good.forecast is not None
    assert good.forecast.rst_trace == ((datetime(2026, 1, 15, 13, 0, tzinfo=UTC), -0.5),)
    assert good.evidence()["rst_trace"] == [["2026-01-15T13:00:00Z", -0.5]] and good.evidence()["id"] == 4
    bad = store._stored_forecast(
        route_id="P1", id=5, source="met", domain=None, issued_at=at, min_rst=-1.0, min_rst_at=None,
        precipitation="none", precipitation_mm=None, precipitation_start=None, precipitation_end=None,
        dew_point=None, rst_trace=None,
    )  # fmt: skip
    assert bad.forecast is None and bad.problem is not None and "together" in bad.problem
