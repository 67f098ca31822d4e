"""The damp judgement stays the same as it is made faster: generated homes checked against the judgements the
per-home code gave (tests/fixtures/damp/golden_assessments.jsonl), and the batch path (core.damp.assess_many,
which the evaluator uses) checked against the per-home path (core.damp.assess) home by home.

The homes cover warm and dry, borderline, cold only, cold and damp, humid spells, condensation, mould index
growth and decline, gaps, sensors gone quiet (not enough data), rooms never heard from, several rooms, readings
more often than hourly, impossible values, measured / gappy / missing outdoor temperatures, summer, both clock
changes, and held levels (hysteresis).

Regenerate the golden file only when a change of behaviour is intended:
    python -m tests.unit.test_damp_equivalence --write
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.damp import Assessment, DampPolicy, HourlyHome, PreviousLevel, assess, assess_many

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "damp" / "golden_assessments.jsonl"
HOURS = 30 * 24

NOWS = {
    "winter": datetime(2027, 1, 20, 10, 10, tzinfo=UTC),  # heating season, GMT
    "summer": datetime(2026, 7, 15, 12, 20, tzinfo=UTC),  # outside it, BST
    "spring": datetime(2027, 3, 30, 5, 40, tzinfo=UTC),  # the window holds 28 March (23 hours), before dawn
    "autumn": datetime(2026, 10, 27, 23, 5, tzinfo=UTC),  # the window holds 25 October (25 hours), late evening
}
POLICIES = {
    "default": DampPolicy(),
    "no_typical": DampPolicy(default_outdoor_by_month=None),
    "strict": DampPolicy(
        rh_week_limit=70.0, rh_month_limit=60.0, mould_class="very sensitive", mould_cmat=1.0, hold_days=1.0
    ),
}
ROOM_NAMES = ("Bedroom", "Kitchen", "Living room", "bedroom 2", "WC", "Bathroom")
# (indoor temperature low, high; indoor RH low, high): the mix of households in bench.damp and more.
PROFILES = {
    "warm_dry": (19.5, 22.0, 40.0, 55.0),
    "borderline": (18.5, 20.5, 58.0, 66.0),
    "cold_only": (14.0, 17.0, 45.0, 55.0),
    "cold_damp": (14.5, 17.0, 74.0, 86.0),
    "very_humid": (17.0, 20.0, 84.0, 95.0),
    "mould_then_dry": (15.0, 17.0, 85.0, 92.0),  # grows for weeks, then a dry last week: the index declines
    "dry_then_mould": (15.0, 17.0, 45.0, 55.0),  # dry, then a damp last ten days
    "spells": (19.0, 21.0, 55.0, 62.0),  # humid spells at night (the 70/90 % in 12 h rules, last night)
}


def _wave(h: int) -> float:
    """-1 to 1 over a day, highest mid-afternoon (arithmetic only, so the same on every platform)."""
    return 1.0 - abs(((h - 15) % 24) - 12) / 6.0


@dataclass
class Home:
    """One generated home: hourly means per room on the window's grid, and how the readings are handed over."""

    name: str
    now: datetime
    policy: str
    rooms: list[tuple[str, np.ndarray, np.ndarray]]  # room, temperature, RH per hour (NaN: none)
    outdoor: np.ndarray | None
    previous: PreviousLevel | None
    sub_hourly: bool = False  # hand over readings every 20 minutes, not hourly means
    impossible: bool = False  # add out-of-range readings that must be dropped

    def window_start(self) -> pd.Timestamp:
        """The first hour of the judged window."""
        return pd.Timestamp(self.now).floor("h") - pd.Timedelta(hours=HOURS)

    def frame(self) -> pd.DataFrame:
        """Readings as core.damp.assess takes them."""
        start = self.window_start()
        hours = pd.date_range(start, periods=HOURS, freq="h")
        parts = []
        for room, t, rh in self.rooms:
            if self.sub_hourly:
                # Three readings an hour whose mean is the hourly value (n +- d): the same hourly means.
                for minute, d in ((0, -0.5), (20, 0.0), (40, 0.5)):
                    parts.append(
                        pd.DataFrame(
                            {
                                "ts": hours + pd.Timedelta(minutes=minute),
                                "room": room,
                                "temperature": t + d,
                                "relative_humidity": rh - d,
                            }
                        )
                    )
            else:
                parts.append(pd.DataFrame({"ts": hours, "room": room, "temperature": t, "relative_humidity": rh}))
        if self.impossible:
            parts.append(
                pd.DataFrame(
                    {
                        "ts": hours[-30:] + pd.Timedelta(minutes=5),
                        "room": self.rooms[0][0],
                        "temperature": np.full(30, 120.0),
                        "relative_humidity": np.full(30, 140.0),
                    }
                )
            )
        # Readings from before the window and from the hour containing now are ignored.
        parts.append(
            pd.DataFrame(
                {
                    "ts": [start - pd.Timedelta(minutes=30), pd.Timestamp(self.now).floor("h")],
                    "room": self.rooms[0][0] if self.rooms else "Bedroom",
                    "temperature": [5.0, 5.0],
                    "relative_humidity": [99.0, 99.0],
                }
            )
        )
        return pd.concat(parts, ignore_index=True)

    def outdoor_series(self) -> pd.Series | None:
        """Outdoor temperature as core.damp.assess takes it."""
        if self.outdoor is None:
            return None
        return pd.Series(self.outdoor, index=pd.date_range(self.window_start(), periods=HOURS, freq="h"))

    def judge(self) -> Assessment:
        """The per-home judgement."""
        return assess(
            self.frame(), self.now, POLICIES[self.policy], outdoor=self.outdoor_series(), previous=self.previous
        )


def _series(r: random.Random, profile: str, now: datetime) -> tuple[np.ndarray, np.ndarray]:
    t_lo, t_hi, rh_lo, rh_hi = PROFILES[profile]
    t0 = r.uniform(t_lo, t_hi)
    rh0 = r.uniform(rh_lo, rh_hi)
    t = np.empty(HOURS)
    rh = np.empty(HOURS)
    for h in range(HOURS):
        day = _wave(h + now.hour)
        noise = r.random() + r.random() - 1.0
        t[h] = t0 + 0.8 * day + 0.4 * noise
        rh[h] = rh0 - 3.0 * day + 2.0 * (r.random() + r.random() - 1.0) + 2.0 * _wave(h // 7)
    if profile == "mould_then_dry":
        rh[-7 * 24 :] -= 40.0
    elif profile == "dry_then_mould":
        rh[-10 * 24 :] += 38.0
    elif profile == "spells":
        for h in range(HOURS - 30, HOURS, 1):
            if (h + now.hour) % 24 in (23, 0, 1, 2, 3, 4):
                rh[h] = r.choice((72.0, 75.0, 93.0))
    return t, np.clip(rh, 1.0, 100.0)


def _outdoor(r: random.Random, kind: str, now: datetime) -> np.ndarray | None:
    if kind == "none":
        return None
    base = r.uniform(-4.0, 9.0) if now.month in (1, 3, 10) else r.uniform(10.0, 20.0)
    te = np.array([base + 3.0 * _wave(h + now.hour) + 2.0 * _wave(h // 5) for h in range(HOURS)])
    if kind == "frost":  # a hard frost over three nights, last week: condensation on the wall
        te[-5 * 24 : -2 * 24] = -12.0
    elif kind == "gappy":  # short gaps (filled from neighbours) and a long one (typical values)
        for h in range(0, HOURS, 50):
            te[h : h + r.randint(1, 5)] = np.nan
        te[-60:-20] = np.nan
    elif kind == "silent":
        te[:] = np.nan
    return te


def _gaps(r: random.Random, kind: str, t: np.ndarray, rh: np.ndarray) -> None:
    if kind == "scattered":  # about a fifth of hours missing, the judgement still made
        for h in range(HOURS):
            if r.random() < 0.2:
                (t if r.random() < 0.5 else rh)[h] = np.nan
    elif kind == "thin":  # more than 30 % of the last week missing: not enough data
        for h in range(HOURS - 168, HOURS):
            if r.random() < 0.45:
                t[h] = rh[h] = np.nan
    elif kind == "quiet":  # silent for the last 8 days
        t[-8 * 24 :] = rh[-8 * 24 :] = np.nan
    elif kind == "never":  # a sensor that has never sent anything
        t[:] = rh[:] = np.nan
    elif kind == "negative_zero":  # -0.0 C readings (a frozen loft), as a decoder may give them
        t[-100:-90] = -0.0


def homes(seed: int = 20270120, per_now: int = 40) -> Iterator[Home]:
    """Varied generated homes, the same every time."""
    r = random.Random(seed)
    for when, now in NOWS.items():
        for i in range(per_now):
            profile = (*PROFILES, "warm_dry", "borderline")[i % (len(PROFILES) + 2)]
            n_rooms = 1 + (i % 3 == 1) + (i % 7 == 3)
            names = sorted(r.sample(ROOM_NAMES, n_rooms), key=lambda _: r.random())  # any order
            rooms = []
            for k, room in enumerate(names):
                t, rh = _series(r, profile if k == 0 else r.choice(("warm_dry", "warm_dry", *PROFILES)), now)
                gaps = r.choices(("none", "scattered", "thin", "quiet", "never", "negative_zero"), (10, 3, 1, 1, 1, 1))
                _gaps(r, gaps[0], t, rh)
                rooms.append((room, t, rh))
            outdoor = _outdoor(r, r.choice(("measured", "measured", "frost", "gappy", "silent", "none")), now)
            previous = None
            pick = r.random()
            if pick < 0.3:
                previous = PreviousLevel("red", now - timedelta(hours=r.choice((5, 30, 80, 200))))
            elif pick < 0.4:
                previous = PreviousLevel("watch", now - timedelta(days=1))
            elif pick < 0.45:
                previous = PreviousLevel("insufficient_data", now - timedelta(days=9))
            policy = "default" if i % 10 < 7 else ("no_typical" if i % 10 == 7 else "strict")
            yield Home(
                name=f"{when}-{i:02d}-{profile}",
                now=now,
                policy=policy,
                rooms=rooms,
                outdoor=outdoor,
                previous=previous,
                sub_hourly=i % 11 == 5,
                impossible=i % 13 == 4,
            )
        # Homes with no readings at all, with and without an outdoor feed.
        yield Home(f"{when}-empty", now, "default", [], _outdoor(r, "measured", now), None)
        yield Home(f"{when}-empty-held", now, "default", [], None, PreviousLevel("red", now - timedelta(days=1)))


def _record(home: Home, a: Assessment) -> dict[str, Any]:
    """What the golden file keeps of a judgement: a digest of all of it (every figure, sentence and time, as
    as_dict gives them), and its level and rules to read."""
    text = json.dumps(a.as_dict(), sort_keys=True, allow_nan=False)
    return {
        "home": home.name,
        "level": a.level,
        "raw_level": a.raw_level,
        "rules": [f"{f.room}:{f.rule}" for f in a.findings],
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def _golden() -> dict[str, Any]:
    return {row["home"]: row for row in map(json.loads, GOLDEN.read_text().splitlines())}


def test_generated_homes_cover_every_level_rule_and_outdoor_source() -> None:
    judged = [h.judge() for h in homes()]
    assert {a.level for a in judged} == {"green", "advice", "watch", "red", "insufficient_data"}
    rules = {f.rule for a in judged for f in a.findings}
    assert rules == {
        "adf_week",
        "adf_month",
        "adf_day",
        "adf_70_in_12h",
        "adf_90_in_12h",
        "bs5250_surface",
        "condensation",
        "mould_index",
        "cold_home",
        "coverage",
    }
    assert {a.outdoor_source for a in judged} == {"measured", "typical_month", "none"}
    assert any(a.level != a.raw_level for a in judged)  # a level held by hysteresis
    peaks = [v["mould_index_peak"] for a in judged for v in a.figures.values() if v["mould_index_peak"]]
    assert max(peaks) > 1.0 and any(0.0 < p < 0.5 for p in peaks)


def test_judgements_are_the_ones_the_per_home_code_gave() -> None:
    golden = _golden()
    seen = set()
    for home in homes():
        seen.add(home.name)
        a = home.judge()
        assert _record(home, a) == golden[home.name], json.dumps(a.as_dict(), indent=1)
    assert seen == set(golden)


def test_the_batch_path_gives_the_judgements_the_per_home_code_gave() -> None:
    golden = _golden()
    by_when: dict[tuple[datetime, str], list[Home]] = {}
    for home in homes():
        if not home.sub_hourly:  # the batch takes hourly means; these homes' readings are their hourly means
            by_when.setdefault((home.now, home.policy), []).append(home)
    checked = 0
    for (now, policy), group in by_when.items():
        hourly = [HourlyHome(tuple(h.rooms), h.outdoor, h.previous) for h in group]
        for home, a in zip(group, assess_many(hourly, now, POLICIES[policy]), strict=True):
            assert _record(home, a) == golden[home.name], json.dumps(a.as_dict(), indent=1)
            checked += 1
    assert checked > 140


def _random_home(rng: np.random.Generator, feeds: list[np.ndarray | None]) -> HourlyHome:
    rooms = []
    names = ["Bedroom", "Kitchen", "Hall", "bedroom 2", "WC", "Bathroom", "Living room", "Study", "Loft", "Utility"]
    for _ in range(int(rng.choice([0, 1, 1, 1, 2, 2, 3, 4]))):
        name = str(rng.choice(names))  # sometimes the same name twice: averaged hour by hour
        t = rng.uniform(10.0, 23.0) + rng.normal(0.0, rng.uniform(0.1, 3.0), HOURS)
        rh = rng.uniform(35.0, 95.0) + rng.normal(0.0, rng.uniform(0.5, 8.0), HOURS)
        t[rng.random(HOURS) < rng.choice([0.0, 0.0, 0.05, 0.4])] = np.nan
        rh[rng.random(HOURS) < rng.choice([0.0, 0.0, 0.05, 0.4])] = np.nan
        if rng.random() < 0.1:
            t[-int(rng.integers(1, 400)) :] = np.nan
        if rng.random() < 0.1:  # impossible hourly values, dropped
            rh[rng.integers(0, HOURS, 5)] = 104.0
            t[rng.integers(0, HOURS, 5)] = -60.0
        if rng.random() < 0.1:
            t[rng.integers(0, HOURS, 5)] = -0.0
        rooms.append((name, t, np.minimum(rh, 100.0) if rng.random() < 0.8 else rh))
    previous = None
    if rng.random() < 0.4:
        level = rng.choice(["red", "watch", "advice", "green", "insufficient_data"])
        previous = PreviousLevel(level, WHEN - timedelta(hours=float(rng.uniform(1, 200))))
    return HourlyHome(tuple(rooms), feeds[int(rng.integers(0, len(feeds)))], previous)


WHEN = NOWS["winter"]


@pytest.mark.parametrize("policy", ["default", "no_typical", "strict"])
def test_the_batch_path_judges_each_home_as_the_per_home_path_does(policy: str) -> None:
    rng = np.random.default_rng(7)
    feeds: list[np.ndarray | None] = [None]
    for _ in range(6):
        te = rng.uniform(-8.0, 12.0) + rng.normal(0.0, 2.0, HOURS)
        te[rng.random(HOURS) < rng.choice([0.0, 0.1, 0.5, 1.0])] = np.nan
        feeds.append(te)
    batch = [_random_home(rng, feeds) for _ in range(400)]
    start = pd.Timestamp(WHEN).floor("h") - pd.Timedelta(hours=HOURS)
    grid = pd.date_range(start, periods=HOURS, freq="h")
    got = assess_many(batch, WHEN, POLICIES[policy])
    assert len(got) == len(batch)
    for home, a in zip(batch, got, strict=True):
        frame = pd.DataFrame(
            {
                "ts": np.tile(grid, len(home.rooms)),
                "room": np.repeat([r for r, _, _ in home.rooms], HOURS),
                "temperature": np.concatenate([t for _, t, _ in home.rooms] or [np.zeros(0)]),
                "relative_humidity": np.concatenate([rh for _, _, rh in home.rooms] or [np.zeros(0)]),
            }
        )
        outdoor = None if home.outdoor is None else pd.Series(home.outdoor, index=grid)
        one = assess(frame, WHEN, POLICIES[policy], outdoor=outdoor, previous=home.previous)
        assert a.as_dict() == one.as_dict()
        assert a.findings == one.findings


def write_golden() -> None:
    """Record the judgements of the generated homes (only when a change of behaviour is intended)."""
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(_record(h, h.judge())) for h in homes()]
    GOLDEN.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_golden()
    else:
        pytest.main([__file__, "-q"])
