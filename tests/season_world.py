"""The seeded season the season report's tests read (the nights of 12 to 14 January 2026, two routes, three damp
cases): one per test run, session-scoped in tests/conftest.py, so that the API's and the browser's tests count the
same season once (a module-scoped copy in each seeded it twice and doubled the report's totals).

Station readings are written through ingest's writer, decisions recorded by the store exactly as the evaluator
records them (one re-issued with the same treatment), and everything people did recorded through the API with the
times it happened: acknowledgements, runs with spread rate, tonnes, vehicle and crew, a discretionary run on a
Monitor decision, a run called back and a second run. Damp cases on Awaab's Law clocks with their steps done on
time, late, never, and works completed in a home whose readings dried out after.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from core.gritting import Decision
from core.model import Reading
from core.season import route_length_m
from core.workdays import add_working_days
from store import damp as damp_store
from store import gritting as grit_store
from store.db import connect
from tests.e2e.world import forget_readings, write
from tests.helpers import home, load, sensor, station

LONDON = ZoneInfo("Europe/London")
PERIOD = {"start": "2026-01-12", "end": "2026-01-14"}


def local(d: int, h: int, mi: int = 0, month: int = 1, year: int = 2026) -> datetime:
    return datetime(year, month, d, h, mi, tzinfo=LONDON).astimezone(UTC)


def route_feature(rid: str, stations: list[str], coords: list[list[float]]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coords},
        "properties": {"kind": "route", "id": rid, "name": f"Route {rid}", "priority": 1, "stations": stations},
    }


def decision_row(rid: str, previous: int | None, action: str, issued: datetime, **kw: Any) -> grit_store.NewDecision:
    """A decision as alerts.gritting hands it to store.record_decisions."""
    rate = kw.get("rate")
    decision = Decision(
        route_id=rid,
        action=action,  # type: ignore[arg-type]
        rule="seeded_for_the_season_report",
        decided_at=issued,
        spread_rate_g_m2=rate,
        road_wetness="dry",  # type: ignore[arg-type]
        call_out_by=kw.get("call_out_by"),
        reasons=("seeded",),
        confidence=0.9,
    )
    return grit_store.NewDecision(
        decision=decision, previous_id=previous, message=f"{action} on {rid}", evidence={"seeded": True}
    )


def record(dsn: str, row: grit_store.NewDecision) -> int:
    with connect(dsn) as conn:
        stored, skipped = grit_store.record_decisions(
            conn, decisions=[row], evaluated=[row.decision.route_id], at=row.decision.decided_at
        )
        conn.commit()
    assert not skipped, skipped
    return stored[0][0]


def act(api_url: str, headers: dict[str, str], did: int, action: str, **body: Any) -> dict[str, Any]:
    body = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in body.items()}
    r = httpx.post(f"{api_url}/api/v1/gritting/decisions/{did}/{action}", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def case_act(api_url: str, headers: dict[str, str], cid: int, action: str, at: datetime, note: str | None = None):
    body = {"action": action, "at": at.isoformat(), "note": note}
    r = httpx.post(f"{api_url}/api/v1/damp/cases/{cid}/actions", json=body, headers=headers)
    assert r.status_code == 200, r.text


def rst_readings(dev: str, start: datetime, end: datetime, freezes: list[tuple[datetime, datetime, float]]):
    """Road surface temperature every 30 minutes: +3 °C, but `value` within each (from, to) freeze."""
    out, t = [], start
    while t < end:
        v = next((val for a, b, val in freezes if a <= t < b), 3.0)
        out.append(Reading(dev, "road_surface_temperature", t, v))
        t += timedelta(minutes=30)
    return out


@dataclass
class Season:
    uid: str
    routes: dict[str, str]
    decisions: dict[str, int]
    patch: str
    officer: str
    cases: dict[str, int]
    length_a_m: float
    devices: list[str]


@pytest.fixture(scope="session")
def season(database_url: str, api_url: str, make_user: Any, token_for: Any) -> Iterator[Season]:
    uid = uuid.uuid4().hex[:6]
    sa, sb, ra, rb = f"rws-a-{uid}", f"rws-b-{uid}", f"A-{uid}", f"B-{uid}"
    line_a = [[-1.90, 52.48], [-1.85, 52.49], [-1.80, 52.49]]
    patch = f"season-{uid}"
    homes = {k: f"uprn-{uid}-{k}" for k in ("c1", "c2", "c3")}
    room = f"{homes['c1']}/kitchen"
    load(
        database_url,
        station(sa),
        station(sb),
        route_feature(ra, [sa], line_a),
        route_feature(rb, [sb], [[-1.9, 52.40], [-1.9, 52.41]]),
        *[home(h, patch) for h in homes.values()],
        sensor(room, homes["c1"], "kitchen"),
    )
    # Readings: A freezes on the night of the 12th (03:00 on the 13th) and of the 14th (22:00); B on the 13th
    # (05:00 on the 14th) and has no readings on the night of the 14th.
    readings = rst_readings(
        sa, local(12, 12), local(15, 12), [(local(13, 3), local(13, 6), -1.0), (local(14, 22), local(15, 2), -0.5)]
    )
    readings += rst_readings(sb, local(12, 12), local(14, 12), [(local(14, 5), local(14, 7), -0.3)])
    # The kitchen: hourly; humid (85 %) half of each day for four weeks before the works, 55 % after.
    works_at = local(13, 10)
    t = works_at - timedelta(days=28)
    while t < works_at + timedelta(days=28):
        humid = t < works_at and t.hour < 12
        readings += [
            Reading(room, "temperature", t, 17.0),
            Reading(room, "relative_humidity", t, 85.0 if humid else 55.0),
        ]
        t += timedelta(hours=1)
    write(database_url, readings)

    highways = token_for("highways")
    officer, password = make_user("officer", patch=patch)
    r = httpx.post(api_url + "/api/v1/auth/token", data={"username": officer, "password": password})
    officer_h = {"Authorization": f"Bearer {r.json()['access_token']}"}

    d: dict[str, int] = {}
    # Route A. Night 12: precautionary salting, acknowledged after 15 min, a run with tonnes.
    d["a1"] = record(database_url, decision_row(ra, None, "precautionary_salt", local(12, 17), rate=10.0))
    act(api_url, highways, d["a1"], "acknowledge", at=local(12, 17, 15), note="crews on standby")
    act(api_url, highways, d["a1"], "start", at=local(12, 19), vehicle="Gritter 7", crew="J. Smith, A. Khan")
    act(api_url, highways, d["a1"], "complete", at=local(12, 21, 30), tonnes=2.5, spread_rate_g_m2=10.0)
    # Night 13: Monitor; the duty officer treats anyway (discretionary, 8 g/m2, no tonnes).
    d["a2"] = record(database_url, decision_row(ra, d["a1"], "monitor", local(13, 17)))
    act(api_url, highways, d["a2"], "start", at=local(13, 20), reason="police report ice on the bridge",
        spread_rate_g_m2=8.0, vehicle="Gritter 3")  # fmt: skip
    act(api_url, highways, d["a2"], "complete", at=local(13, 22))
    # Night 14: salting at 15 g/m2, never acknowledged; the run starts after the freeze (missed, treated late).
    d["a3"] = record(database_url, decision_row(ra, d["a2"], "salt", local(14, 18), rate=15.0))
    act(api_url, highways, d["a3"], "start", at=local(14, 23))
    act(api_url, highways, d["a3"], "complete", at=local(15, 1))
    # Route B. Night 12: nothing. Night 13: precautionary salting acknowledged after 40 min, then re-issued
    # with the same treatment and a later call-out (keeps the acknowledgement); a run called back, a second run.
    d["b1"] = record(database_url, decision_row(rb, None, "none", local(12, 17)))
    d["b2"] = record(database_url, decision_row(rb, d["b1"], "precautionary_salt", local(13, 17), rate=10.0,
                                                 call_out_by=local(13, 19)))  # fmt: skip
    act(api_url, highways, d["b2"], "acknowledge", at=local(13, 17, 40))
    d["b3"] = record(database_url, decision_row(rb, d["b2"], "precautionary_salt", local(13, 18), rate=10.0,
                                                 call_out_by=local(13, 19, 30)))  # fmt: skip
    act(api_url, highways, d["b3"], "start", at=local(13, 20), vehicle="Gritter 9")
    act(api_url, highways, d["b3"], "cancel-run", at=local(13, 20, 30), note="gritter 9 broke down")
    act(api_url, highways, d["b3"], "start", at=local(13, 21), vehicle="Gritter 4", crew="P. Jones")
    act(api_url, highways, d["b3"], "complete", at=local(13, 23), tonnes=1.2)

    # Damp: three cases the landlord became aware of on Monday 29 December 2025 (investigate by 13 January).
    aware = local(29, 9, month=12, year=2025)
    with connect(database_url) as conn:
        cases = damp_store.open_cases(
            conn,
            [
                damp_store.NewCase(
                    home_id=h,
                    opened_at=aware,
                    aware_at=aware,
                    investigate_by=add_working_days(aware, 10),
                    assessment_id=None,
                    evidence_json='{"seeded": true}',
                    event=damp_store.Event(at=aware, actor="placewatch", actor_role="system", action="opened"),
                    officer=officer if k != "c3" else None,
                )
                for k, h in homes.items()
            ],
        )
        conn.commit()
    c = {k: cases[h] for k, h in homes.items()}
    # c1: investigated on 8 January (on time), summary on the 14th (late: due the 13th), works done on the 13th.
    case_act(api_url, officer_h, c["c1"], "investigation_done", local(8, 10))
    case_act(api_url, officer_h, c["c1"], "works_started", local(9, 10))
    case_act(api_url, officer_h, c["c1"], "works_completed", works_at)
    case_act(api_url, officer_h, c["c1"], "summary_sent", local(14, 9))
    # c2 is never investigated (overdue); c3 is closed with a reason before any investigation (not needed).
    case_act(api_url, token_for("admin"), c["c3"], "close", local(10, 9), note="tenant moved out")

    length = route_length_m({"type": "LineString", "coordinates": line_a})
    assert length is not None
    yield Season(uid, {"a": ra, "b": rb}, d, patch, officer, c, length, [sa, sb, room])
    forget_readings(database_url, [sa, sb, room])
