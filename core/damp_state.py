"""A home's damp state from one evaluation to the next, and what follows from a change (Awaab's Law case opening).

Pure: alerts.damp reads each home's state (store.damp.home_states), judges it (core.damp.assess_many), calls
next_state, then writes what it returns (store.damp) and publishes. The rules, in one place:

- Red since: a red spell starts at the first red evaluation and lasts while the home stays red; any other level
  ends it (red_since is None unless the home is red).
- A rise: the level went up from a judged level (from insufficient_data, or at the first evaluation, it is not a
  rise). The tenant is told, with the advice tied to their readings.
- A level change while a case is open is a line in that case's history.
- A red home with no open case gets one: the first time (no case ever closed), when it went red again after its
  last case closed, or when it has stayed red for REOPEN_AFTER since an officer closed its case during this same red
  spell (the hazard was not dealt with). Red continuing with a case open, or closed less than REOPEN_AFTER ago within
  the same red spell, opens nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.damp import Assessment, DampLevel, Level, PreviousLevel, level_rank

# After an officer closes a case while the home is still red, a new case opens only when the home goes red
# again, or when it has stayed red this long after the close (the hazard was not dealt with).
REOPEN_AFTER = timedelta(days=14)
# A home has a (retained) alert while its level is one of these, or while it has an open case.
ALERTING_LEVELS: frozenset[DampLevel] = frozenset({DampLevel.ADVICE, DampLevel.WATCH, DampLevel.RED})


@dataclass(frozen=True, slots=True)
class HomeBefore:
    """What is known of a home before an evaluation: what the last one left, and its cases."""

    level: Level | None = None  # None: never evaluated
    hold: PreviousLevel | None = None  # the hysteresis state core.damp.assess keeps (pass as `previous`)
    red_since: datetime | None = None  # the start of the red spell the last evaluation was in
    open_case: bool = False  # a case is open for the home
    last_closed_at: datetime | None = None  # when its last case was closed (None: none ever was)


@dataclass(frozen=True, slots=True)
class HomeState:
    """A home's damp state as an evaluation leaves it."""

    level: Level
    raw_level: Level
    hold: PreviousLevel | None
    red_since: datetime | None  # None unless red


class Opening(StrEnum):
    """Why a red home with no open case gets a new one."""

    FIRST = "first"  # no case of the home was ever closed
    RED_AGAIN = "red_again"  # red again after its last case closed
    STILL_RED = "still_red"  # red throughout since its last case closed, REOPEN_AFTER ago or more


@dataclass(frozen=True, slots=True)
class Transition:
    """A home's new state and what to do about it."""

    state: HomeState
    was: Level | None  # the level before (None: first evaluation)
    changed: bool  # the level changed: the home's alert may need publishing
    rose: bool  # the level went up from a judged level: tell the tenant
    log_on_case: bool  # the level changed while a case is open: a line in that case's history
    opening: Opening | None  # open a case, and why; None: no case to open


def next_state(before: HomeBefore, assessment: Assessment, now: datetime) -> Transition:
    """The home's state after this assessment at `now`, and what follows: a rise, a level change to log on the open
    case, a case to open."""
    was, level = before.level, assessment.level
    red_since = None
    if level == "red":
        red_since = before.red_since if was == "red" and before.red_since is not None else now
    changed = was != level
    return Transition(
        state=HomeState(level=level, raw_level=assessment.raw_level, hold=assessment.state, red_since=red_since),
        was=was,
        changed=changed,
        rose=changed and was is not None and was != "insufficient_data" and level_rank(level) > level_rank(was),
        log_on_case=changed and before.open_case and was is not None,
        opening=_opening(before, red_since, now) if red_since is not None and not before.open_case else None,
    )


def _opening(before: HomeBefore, red_since: datetime, now: datetime) -> Opening | None:
    """Why a red home with no open case gets one, or None when an officer closed one during this same red spell
    less than REOPEN_AFTER ago."""
    if before.last_closed_at is None:
        return Opening.FIRST
    if red_since > before.last_closed_at:
        return Opening.RED_AGAIN
    if now - before.last_closed_at >= REOPEN_AFTER:
        return Opening.STILL_RED
    return None


def has_alert(level: str | None, open_case: bool) -> bool:
    """A home has a retained alert while its level is advice, watch or red, or it has an open case."""
    return open_case or level in ALERTING_LEVELS
