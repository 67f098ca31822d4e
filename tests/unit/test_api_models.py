"""Every route of the housing, device, admin and notification routers answers through a response model, and the
models keep the JSON the routes gave before them (the contract is public): the same keys, with a next step's
hours_left or working_days_left (never both) and a home never assessed with only its level and reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_args, get_origin

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from api.routers import (
    admin,
    auth,
    council,
    damp,
    devices,
    evaluation,
    forecasts,
    health,
    homes,
    notifications,
    reports,
)
from core.cases import CaseStatus
from core.damp import NOT_ASSESSED
from dashboards import open_data
from store.damp import CASE_COLUMNS, Case, CaseLogEntry

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ROUTERS = (admin, auth, council, damp, devices, evaluation, forecasts, health, homes, notifications, reports)


def _routes() -> list[tuple[str, APIRoute]]:
    return [(f"{m.__name__} {r.path}", r) for m in ROUTERS for r in m.router.routes if isinstance(r, APIRoute)]


@pytest.mark.parametrize(("name", "route"), _routes(), ids=[n for n, _ in _routes()])
def test_every_route_answers_through_a_model(name: str, route: APIRoute) -> None:
    model = route.response_model
    if get_origin(model) is list:
        (model,) = get_args(model)
    assert isinstance(model, type) and issubclass(model, BaseModel), f"{name} answers {route.response_model!r}"


def test_the_open_data_answers_json_through_models_and_csv_as_csv() -> None:
    routes = [r for r in open_data.router.routes if isinstance(r, APIRoute)]
    assert len(routes) == 8
    for r in routes:
        if r.path.endswith(".csv"):
            assert r.response_model is None, r.path  # a CSV made from the same models
        else:
            model = r.response_model
            assert isinstance(model, type) and issubclass(model, BaseModel), r.path
    geo = [r for r in routes if r.path.endswith(".geojson")]
    assert [r.response_class.media_type for r in geo] == ["application/geo+json"] * 2  # type: ignore[attr-defined]


def _case(**over: Any) -> Case:
    aware = NOW - timedelta(days=2)
    case = dict.fromkeys(CASE_COLUMNS) | {
        "id": 12, "home_id": "100070000001", "level": "red", "status": "open", "opened_at": aware,
        "aware_at": aware, "aware_source": "sensors", "investigate_by": NOW + timedelta(days=12),
        "overdue_steps": [], "updated_at": aware, "officer": "asha", "patch": "ladywood", "address": "1 High St",
        "home_level": "red", "evidence": {"level": "red"},
    }  # fmt: skip
    return Case(**case | over)


_HISTORY = [
    CaseLogEntry(
        case_id=12, id=1, at=NOW, recorded_at=NOW, actor="placewatch", actor_role="system", action="opened",
        note=None, from_status=None, to_status="open", details={"officer": "asha"},
    )
]  # fmt: skip


def test_the_case_view_keeps_its_keys_and_a_step_says_working_days_or_hours() -> None:
    view = damp.case_view(_case(), NOW, _HISTORY).model_dump(mode="json", exclude_unset=True, by_alias=True)
    summary = {
        "id", "home_id", "level", "status", "status_text", "officer", "emergency", "opened_at", "aware_at",
        "investigate_by", "next_step", "overdue", "escalated",
    }  # fmt: skip
    rest = {
        "owner_problem", "notice_problem", "allowed_actions", "next_visit", "address", "patch", "home_level",
        "aware_source", "assessment_id", "overdue_flagged", "history",
    }  # fmt: skip
    assert set(view) == summary | rest | set(damp._TIMES)
    assert set(view["next_step"]) == {"step", "what", "due", "overdue", "working_days_left"}
    assert view["history"][0]["action"] == "opened" and view["history"][0]["at"] == "2026-12-02T12:00:00Z"
    emergency = _case(level="emergency", emergency_confirmed_at=NOW, emergency_by=NOW + timedelta(hours=24))
    step = damp.case_view(emergency, NOW, []).model_dump(mode="json", exclude_unset=True)["next_step"]
    assert set(step) == {"step", "what", "due", "overdue", "hours_left"} and step["hours_left"] == 24.0
    detail = damp.case_view(_case(), NOW, [], evidence=True).model_dump(mode="json", exclude_unset=True)
    assert detail["evidence"] == {"level": "red"}


def test_every_time_of_a_case_is_a_field_of_its_view() -> None:
    # A new deadline or done column of damp_cases must be said in the model, or the view refuses the case.
    assert set(damp._TIMES) <= set(damp.CaseView.model_fields)


def test_a_home_never_assessed_has_only_its_level_and_reason() -> None:
    damp_view = homes.HomeDamp.model_validate({"level": NOT_ASSESSED, "reasons": ["Not assessed yet."]})
    assert damp_view.model_dump(mode="json", exclude_unset=True) == {
        "level": "not_assessed",
        "reasons": ["Not assessed yet."],
    }
    assert get_args(get_args(homes.ShownLevel)[1]) == (NOT_ASSESSED,)


def test_the_schema_names_the_vocabulary() -> None:
    schema = damp.CaseView.model_json_schema()
    assert schema["$defs"]["CaseStatus"]["enum"] == [s.value for s in CaseStatus]
    assert "hours_left" not in schema["$defs"]["NextStep"]["required"]
