"""Damp, case and device vocabulary (core.damp, core.cases, core.devices, core.health): the codes are the public
contract and never change, every code has its words, and everyone takes them from core (the rules, the store's SQL,
the API's models, the pages' module)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from api.routers.admin import AdminDevice
from api.routers.damp import ActionIn
from core.cases import (
    ACTION_LABELS,
    ACTION_NOTICES,
    ACTIONS,
    EVENT_TEXT,
    STATUS_TEXT,
    STEP_TEXT,
    STEPS,
    CaseAction,
    CaseEvent,
    CaseLevel,
    CaseStatus,
    CaseStep,
    derive_status,
)
from core.damp import (
    JUDGED_LEVELS,
    LEVEL_EXPLANATIONS,
    LEVEL_LABELS,
    LEVEL_MEANINGS,
    RISE_TITLES,
    WORK_LIST_RANK,
    DampLevel,
    Level,
    level_rank,
)
from core.damp_state import ALERTING_LEVELS, has_alert
from core.devices import DEVICE_STATUS_LABELS, DEVICE_STATUS_WORDS, DeviceStatus, device_status
from core.health import DeviceFacts, HealthPolicy, ProblemCode, check
from dashboards import damp_words
from store import damp as damp_store

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "store" / "migrations"
STATIC = ROOT / "dashboards" / "static"
T = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


def test_the_codes_are_the_contract_and_keep_their_spelling():
    # API JSON, MQTT payloads and database columns carry these strings: renaming one is a breaking change.
    assert [v.value for v in DampLevel] == ["green", "advice", "watch", "red", "insufficient_data"]
    assert [v.value for v in CaseLevel] == ["red", "emergency"]
    assert [v.value for v in CaseStatus] == [
        "open", "investigating", "investigated", "safety_work", "preventative_work", "works_started", "closed",
    ]  # fmt: skip
    assert [v.value for v in CaseStep] == [
        "emergency", "investigate", "summary", "safety_work", "preventative_begin", "preventative_start",
    ]  # fmt: skip
    assert [v.value for v in CaseAction] == [
        "acknowledge", "visit", "investigation_done", "summary_sent", "safety_work_done", "works_started",
        "works_completed", "confirm_emergency", "close",
    ]  # fmt: skip
    assert [v.value for v in CaseEvent] == [
        "opened", "level_changed", "overdue", "assign", "book_visit", "cancel_visit",
    ]  # fmt: skip
    assert [v.value for v in DeviceStatus] == ["online", "stale", "offline"]
    assert [v.value for v in ProblemCode] == ["offline", "stale", "battery_low", "stuck", "miswired", "rejections"]


def test_the_rules_literal_type_names_the_same_levels():
    assert get_args(Level) == tuple(v.value for v in DampLevel)


def _check_values(sql: str, column: str) -> list[str]:
    """The values of the first `CHECK (column IN (...))` in this migration."""
    found = re.findall(rf"CHECK \({column}\s+IN \(([^)]*)\)\)", sql)
    assert found, f"no CHECK on {column}"
    return re.findall(r"'([^']*)'", found[0])


def test_the_database_accepts_exactly_these_words():
    damp = (MIGRATIONS / "0004_damp.sql").read_text(encoding="utf-8")
    assert _check_values(damp, "level") == [v.value for v in DampLevel]
    assert _check_values(damp, "raw_level") == [v.value for v in DampLevel]
    cases = damp[damp.index("CREATE TABLE damp_cases") :]
    assert _check_values(cases, "level") == [v.value for v in CaseLevel]
    assert _check_values(cases, "status") == [v.value for v in CaseStatus]
    core = (MIGRATIONS / "0001_core.sql").read_text(encoding="utf-8")
    assert set(_check_values(core, "status")) <= set(DeviceStatus)  # what a device may say of itself


@pytest.mark.parametrize(
    ("words", "codes"),
    [
        (LEVEL_LABELS, DampLevel),
        (LEVEL_MEANINGS, DampLevel),
        (LEVEL_EXPLANATIONS, DampLevel),
        (STATUS_TEXT, CaseStatus),
        (STEP_TEXT, CaseStep),
        (ACTION_LABELS, CaseAction),
        (ACTION_NOTICES, CaseAction),
        (EVENT_TEXT, [*CaseAction, *CaseEvent]),
        (DEVICE_STATUS_LABELS, DeviceStatus),
        (DEVICE_STATUS_WORDS, DeviceStatus),
    ],
)
def test_every_code_has_its_words(words, codes):
    assert set(words) == set(codes)
    assert all(w.strip() and w == w.strip() for w in words.values())


def test_the_levels_order_and_which_alert():
    assert sorted(DampLevel, key=level_rank) == ["insufficient_data", "green", "advice", "watch", "red"]
    assert JUDGED_LEVELS == ("green", "advice", "watch", "red")
    assert set(RISE_TITLES) == set(ALERTING_LEVELS) == {"advice", "watch", "red"}
    # plain strings from the database find the same entries
    assert has_alert("watch", False) and not has_alert("green", False) and has_alert("green", True)
    assert level_rank("red") > level_rank("insufficient_data")


def test_the_steps_are_the_case_steps_in_order():
    assert [name for name, _, _ in STEPS] == list(CaseStep)
    assert ACTIONS == tuple(CaseAction)


def test_a_derived_status_is_a_case_status():
    case = {"closed_at": None, "investigation_done_at": None, "acknowledged_at": None, "visited_at": None}
    assert derive_status(case) is CaseStatus.OPEN and derive_status(case) == "open"
    assert derive_status(case | {"closed_at": T}) is CaseStatus.CLOSED


def test_device_status_and_problems_are_the_vocabulary():
    assert device_status("offline", T, 60, T) is DeviceStatus.OFFLINE
    assert device_status(None, None, 60, T) is DeviceStatus.STALE
    assert device_status("online", T - timedelta(minutes=1), 60, T) is DeviceStatus.ONLINE
    facts = DeviceFacts("d1", "home_sensor", "offline", T, 60, battery_percent=5.0)
    assert [p.code for p in check(facts, T, HealthPolicy())] == [ProblemCode.OFFLINE, ProblemCode.BATTERY_LOW]


def test_the_work_list_order_in_sql_is_made_from_core():
    sql = damp_store._RISK_RANK
    for level, rank in WORK_LIST_RANK.items():
        assert f"'{level}' THEN {rank}" in sql
    assert set(WORK_LIST_RANK) == {*DampLevel, CaseLevel.EMERGENCY}


def test_the_api_takes_the_case_actions_and_the_device_statuses():
    for action in CaseAction:
        assert ActionIn(action=action.value).action is action
    with pytest.raises(ValidationError):
        ActionIn(action="tidy_up")
    schema = AdminDevice.model_json_schema()
    assert schema["$defs"]["DeviceStatus"]["enum"] == ["online", "stale", "offline"]


def test_the_pages_module_is_written_from_core():
    # Fails when core's words change and dashboards/static/damp_words.js was not written again:
    # run `python -m dashboards.damp_words`.
    assert damp_words.PATH.read_text(encoding="utf-8") == damp_words.module_text()
    levels = damp_words.levels()
    assert list(levels) == ["emergency", "red", "watch", "advice", "green", "insufficient_data", "not_assessed"]
    assert levels["insufficient_data"]["label"] == LEVEL_LABELS[DampLevel.INSUFFICIENT_DATA]


def test_no_page_spells_the_words_again():
    # The words live in damp_words.js (from core); another script repeating one has made a second copy.
    words = [
        *LEVEL_MEANINGS.values(), *LEVEL_EXPLANATIONS.values(), *STATUS_TEXT.values(),
        *DEVICE_STATUS_LABELS.values(), *DEVICE_STATUS_WORDS.values(),
    ]  # fmt: skip
    for path in STATIC.glob("*.js"):
        if path.name == "damp_words.js":
            continue
        text = path.read_text(encoding="utf-8")
        assert [w for w in words if f"'{w}'" in text or f'"{w}"' in text] == [], path.name
