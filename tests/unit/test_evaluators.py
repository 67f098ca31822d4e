"""One evaluator shape (issue 15 item 3), without services: the one explicit list the scheduler runs, imported
directly (an import error stops it at start), the hooks called only on the evaluators that have them (none
writes an empty one), and the one debouncer every evaluator uses."""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import textwrap
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from alerts.context import AlertContext, Evaluator, LateWindows, OnLate, OnReadings
from alerts.debounce import Debouncer
from alerts.scheduler import Scheduler, default_evaluators
from placewatch.settings import Settings

ALL = [
    "gritting",
    "damp",
    "device-health",
    "retention",
    "rollup",
    "hourly_days",
    "notifications",
    "forecast-fetch",
    "nowcast-fit",
]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# -- the registry ----------------------------------------------------------------------------------------------


def test_the_scheduler_runs_one_explicit_list_in_its_order() -> None:
    assert [e.name for e in default_evaluators(Settings())] == [n for n in ALL if n != "forecast-fetch"]
    assert [e.name for e in default_evaluators(Settings(forecast_provider="open-meteo"))] == ALL


def test_every_evaluator_has_the_one_shape() -> None:
    for ev in default_evaluators(Settings(forecast_provider="open-meteo")):
        assert Evaluator in type(ev).__mro__, ev.name  # subclassed, so the defaults are the Protocol's
        assert ev.interval_s > 0, ev.name
        assert ev.first_delay_s >= 0, ev.name
        assert callable(ev.sweep), ev.name


def test_only_the_evaluators_that_use_new_and_late_readings_have_those_hooks() -> None:
    evaluators = default_evaluators(Settings(forecast_provider="open-meteo"))
    assert [e.name for e in evaluators if isinstance(e, OnReadings)] == ["gritting", "damp"]
    assert [e.name for e in evaluators if isinstance(e, OnLate)] == ["gritting", "damp"]


def _bodies_are_empty(fn: Any) -> bool:
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    rest = body[1:] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else body
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)) for s in rest)


def test_no_evaluator_writes_an_empty_hook() -> None:
    for ev in default_evaluators(Settings(forecast_provider="open-meteo")):
        for hook in ("on_readings", "on_late"):
            fn = getattr(type(ev), hook, None)
            assert fn is None or not _bodies_are_empty(fn), f"{ev.name}.{hook} does nothing: leave it out"


@pytest.fixture
def without_nowcast_fit() -> Iterator[None]:
    """alerts.nowcast_fit made unimportable (as a missing file or dependency would), the scheduler imported anew."""
    saved = {name: sys.modules.get(name) for name in ("alerts.scheduler", "alerts.nowcast_fit")}
    sys.modules.pop("alerts.scheduler", None)
    sys.modules["alerts.nowcast_fit"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


@pytest.mark.usefixtures("without_nowcast_fit")
def test_an_evaluator_that_cannot_be_imported_stops_the_scheduler_at_start() -> None:
    with pytest.raises(ImportError, match=r"alerts\.nowcast_fit"):
        importlib.import_module("alerts.scheduler").default_evaluators(Settings())


# -- the hooks ---------------------------------------------------------------------------------------------------


class SweepOnly(Evaluator):
    name = "sweep-only"
    interval_s = 60.0

    def __init__(self) -> None:
        self.swept = 0

    def sweep(self, ctx: AlertContext) -> None:
        self.swept += 1


class Listening(Evaluator, OnReadings, OnLate):
    name = "listening"
    interval_s = 60.0
    first_delay_s = 5.0

    def __init__(self) -> None:
        self.readings: list[list[str] | None] = []
        self.late: list[LateWindows] = []

    def sweep(self, ctx: AlertContext) -> None:
        pass

    def on_readings(self, ctx: AlertContext, device_ids: Iterable[str] | None) -> None:
        self.readings.append(None if device_ids is None else list(device_ids))

    def on_late(self, ctx: AlertContext, windows: LateWindows) -> None:
        self.late.append(windows)


class Failing(Listening):
    name = "failing"

    def on_readings(self, ctx: AlertContext, device_ids: Iterable[str] | None) -> None:
        raise RuntimeError("this evaluator fails")


def test_defaults_come_from_the_protocol() -> None:
    assert SweepOnly().first_delay_s == 0.0
    assert Listening().first_delay_s == 5.0


def test_new_readings_go_to_the_evaluators_with_the_hook_and_a_failing_one_stops_no_other() -> None:
    sweep_only, failing, listening = SweepOnly(), Failing(), Listening()
    sched = Scheduler(Settings(), [sweep_only, failing, listening], dsn="")
    assert [name for name, _ in sched.on_readings] == ["failing", "listening"]
    assert [name for name, _ in sched.on_late] == ["failing", "listening"]
    ctx: Any = object()  # the hooks here never touch it
    sched._note('["b", "a"]')
    sched._note('["a", "c"]')
    sched._dispatch(ctx)
    sched._note('"*"')
    sched._dispatch(ctx)
    assert listening.readings == [["a", "b", "c"], None]
    assert sweep_only.swept == 0


# -- the debouncer -----------------------------------------------------------------------------------------------


def test_a_key_never_seen_is_due_and_then_waits_its_time() -> None:
    clock = Clock()
    d = Debouncer(300.0, clock=clock)
    assert d.due("home-1") and d.take("home-1")
    assert not d.due("home-1") and not d.take("home-1")
    clock.t += 299.9
    assert not d.due("home-1")
    clock.t += 0.1
    assert d.due("home-1")


def test_only_taking_a_due_key_restarts_its_wait() -> None:
    clock = Clock()
    d = Debouncer(10.0, clock=clock)
    d.mark(["a"])
    clock.t += 6
    assert not d.take("a")  # not due: its wait still ends 10 s after the mark
    clock.t += 4
    assert d.take("a")
    clock.t += 6
    assert not d.due("a")


def test_ready_keeps_the_order_and_leaves_out_keys_in_their_wait() -> None:
    clock = Clock()
    d = Debouncer(60.0, clock=clock)
    d.mark(["b"])
    assert d.ready(["c", "b", "a"]) == ["c", "a"]
    clock.t += 60
    assert d.ready(["c", "b", "a"]) == ["c", "b", "a"]


def test_a_debouncer_of_one_thing_needs_no_key() -> None:
    clock = Clock()
    d = Debouncer(59.0, clock=clock)
    assert d.take()
    clock.t += 58.9
    assert not d.take()
    clock.t += 0.1
    assert d.take()


def test_a_debouncer_of_no_wait_is_always_due() -> None:
    d = Debouncer(0.0, clock=Clock())
    d.mark(["x"])
    assert d.due("x") and d.take("x") and d.take("x")
