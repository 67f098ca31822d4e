"""A road surface temperature nowcast learned from stations' own nights (issue 13): pure, parameters as input.

For an issue time t at a station, the features are what was known at t (the last road surface temperature and
how it moved over 1.5 h and 3 h, air minus road, dew point depression, the sun: its elevation, hours since sunset
and to sunrise, the length of the night); the targets are how far the road falls below its temperature at t by
each horizon H: drop(H) = RST(t) - min RST in (t, t + H]. One small gradient-boosted tree ensemble (least absolute
deviation, histogram splits) per horizon is fitted on all stations' nights together; a station's own mean error
is then learned on top, shrunk toward zero while its nights are few (offset = n / (n + k) x mean error). The band
is the 10th to 90th percentile of the errors on nights held out of the fit. Projections are physically bounded
(the road cannot fall more than MAX_DROP_C in the night nor lie above its present temperature by more than
MAX_RISE_C at its minimum) and the minimum never rises with the horizon.

The fitting here is pure too (arrays in, parameters out); alerts/nowcast_fit.py reads the store, calls it daily
and writes the parameters; the decision and the backtest take them as input. A default fitted on the shared
Colorado stations ships in core/gritting/nowcast_default.json and serves a station until its own nights count.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.gritting.inputs import StationSample
from core.timeparse import utc_z

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

HORIZONS: tuple[int, ...] = (1, 2, 3, 4, 6, 9, 12, 15)  # hours ahead; 15 h reaches 08:00 from 17:00
FEATURES: tuple[str, ...] = (
    "rst",  # the last road surface temperature, C
    "rst_age_min",  # how old it is
    "slope_1h30",  # least-squares trend over the last 1.5 h, C/h
    "slope_3h",  # over the last 3 h
    "rst_max_3h_above",  # the warmest of the last 3 h minus now: how far it has already fallen
    "air_minus_rst",
    "air_minus_dew",  # dew point depression: dry air cools the road further
    "dew_minus_rst",
    "air_slope_3h",
    "sun_elevation_deg",
    "hours_since_sunset",
    "hours_to_sunrise",
    "night_hours",
)
WINDOW_S = 3 * 3600  # a station needs a road surface temperature in the 3 h before an issue time
MAX_DROP_C = 15.0
MAX_RISE_C = 1.0
# Plausible values: sentinels (-99.6, 88.9 on CoTrip feeds) and broken sensors fall outside and are dropped.
PLAUSIBLE = {"rst": (-45.0, 75.0), "air": (-50.0, 50.0), "dew": (-60.0, 35.0)}
# Local issue hours the trees learn from: every hour of the day, so that they know the sun warming the road as
# well as the night cooling it, and speak at any hour (trained on evenings and nights only, they laid a night's
# fall onto the morning and were worse than persistence by day). The sun features tell the hours apart.
LEARN_HOURS = tuple(range(24))
CORRECTION_HOURS = (16, 17, 18, 19, 20, 21, 22, 23)  # a station's correction: the evenings, when call-outs are made
LEARN_NIGHTS = 60  # a station's correction is its mean error over the examples of the last 60 days
SHRINK_NIGHTS = 5.0  # a station's own mean error counts half once it has this many nights
MEMORY_NIGHTS = 60  # nights a station remembers for its reasons ("on 14 evenings like this one ...")
N_TREES, DEPTH = 150, 3  # per horizon: 300 x 4 scored alike leave-stations-out (bench.nowcast) at four times the cost
DEFAULT_PATH = Path(__file__).with_name("nowcast_default.json")
MODEL_VERSION = 2  # 2: learned from every hour of the day (1: 15:00 to 06:59 only)


# ---------------------------------------------------------------------------------------------- station series


@dataclass(frozen=True, slots=True)
class Series:
    """One station's readings as arrays, each measurement on its own clock (epoch seconds), oldest first."""

    station_id: str
    rst_t: I64
    rst_v: F64
    air_t: I64
    air_v: F64
    dew_t: I64
    dew_v: F64
    lat: float | None = None
    lon: float | None = None

    @property
    def empty(self) -> bool:
        """True without a road surface temperature."""
        return len(self.rst_t) == 0


def _clean(ts: Iterable[float], vs: Iterable[float | None], kind: str) -> tuple[I64, F64]:
    t = np.asarray(ts if isinstance(ts, np.ndarray) else list(ts), dtype=np.float64).astype(np.int64)
    v = vs if isinstance(vs, np.ndarray) else [np.nan if x is None else x for x in vs]
    v = np.asarray(v, dtype=np.float64)
    lo, hi = PLAUSIBLE[kind]
    keep = np.isfinite(v) & (v >= lo) & (v <= hi)
    t, v = t[keep], v[keep]
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    if len(t) > 1:  # one value per timestamp: the last given
        last = np.r_[t[1:] != t[:-1], True]
        t, v = t[last], v[last]
    return t, v


def series(
    station_id: str,
    columns: Mapping[str, tuple[Sequence[float], Sequence[float | None]]],
    *,
    lat: float | None = None,
    lon: float | None = None,
) -> Series:
    """A station's series from {"rst"|"air"|"dew": (epoch seconds, values)}; implausible values dropped."""
    parts = {k: _clean(*columns.get(k, ((), ())), k) for k in ("rst", "air", "dew")}
    air_t, air_v = parts["air"]
    dew_t, dew_v = parts["dew"]
    if len(dew_t) and len(air_t):  # a dew point above the air temperature (beyond rounding) is a bad sensor
        idx = np.searchsorted(air_t, dew_t)
        same = (idx < len(air_t)) & (air_t[np.minimum(idx, len(air_t) - 1)] == dew_t)
        bad = same & (dew_v > air_v[np.minimum(idx, len(air_t) - 1)] + 1.0)
        dew_t, dew_v = dew_t[~bad], dew_v[~bad]
    return Series(station_id, *parts["rst"], air_t, air_v, dew_t, dew_v, lat=lat, lon=lon)


def series_from_samples(
    station_id: str, samples: Sequence[StationSample], *, lat: float | None = None, lon: float | None = None
) -> Series:
    """A station's series from the decision's samples."""
    cols: dict[str, tuple[list[float], list[float | None]]] = {}
    for key, attr in (("rst", "road_surface_temperature"), ("air", "air_temperature"), ("dew", "dew_point")):
        pts = [(s.ts.timestamp(), getattr(s, attr)) for s in samples if getattr(s, attr) is not None]
        cols[key] = ([p[0] for p in pts], [p[1] for p in pts])
    return series(station_id, cols, lat=lat, lon=lon)


# ------------------------------------------------------------------------------------------------------- sun


def sun(ts: F64 | I64, lat: float | None, lon: float | None) -> tuple[F64, F64, F64, F64]:
    """Elevation (deg), hours since sunset, hours to sunrise, night length (h) at each epoch second.

    Low-precision solar position (about 0.1 deg), enough for when the road stops being warmed. Without a
    position the hours are unknown (NaN) and the trees treat them as missing."""
    n = len(ts)
    if lat is None or lon is None:
        nan = np.full(n, np.nan)
        return nan, nan, nan, nan
    d = np.asarray(ts, dtype=np.float64) / 86400.0 + 2440587.5 - 2451545.0
    g = np.radians(357.529 + 0.98560028 * d)
    q = 280.459 + 0.98564736 * d
    lam = np.radians(q + 1.915 * np.sin(g) + 0.020 * np.sin(2 * g))
    eps = np.radians(23.439 - 0.00000036 * d)
    ra = np.arctan2(np.cos(eps) * np.sin(lam), np.cos(lam))
    dec = np.arcsin(np.sin(eps) * np.sin(lam))
    gmst_deg = (18.697374558 + 24.06570982441908 * d) * 15.0
    lha = np.radians(gmst_deg + lon) - ra
    phi = math.radians(lat)
    elev = np.degrees(np.arcsin(math.sin(phi) * np.sin(dec) + math.cos(phi) * np.cos(dec) * np.cos(lha)))
    cos_h0 = (math.sin(math.radians(-0.833)) - math.sin(phi) * np.sin(dec)) / (math.cos(phi) * np.cos(dec))
    h0 = np.degrees(np.arccos(np.clip(cos_h0, -1.0, 1.0)))  # 0: polar night, 180: midnight sun
    lha_deg = np.degrees(lha) % 360.0
    rate = 15.0  # degrees of the sun's hour angle per hour
    to_rise = ((360.0 - h0) - lha_deg) % 360.0 / rate
    since_set = (lha_deg - h0) % 360.0 / rate
    night = (360.0 - 2.0 * h0) / rate
    polar_night, midnight_sun = cos_h0 >= 1.0, cos_h0 <= -1.0
    to_rise = np.where(polar_night, 24.0, np.where(midnight_sun, 0.0, to_rise))
    since_set = np.where(polar_night, 24.0, np.where(midnight_sun, 0.0, since_set))
    return elev, since_set, to_rise, night


# --------------------------------------------------------------------------------------------- range queries


class _Sparse:
    """Range minimum and maximum over a fixed array in O(1) per query (sparse tables), vectorised."""

    def __init__(self, v: F64) -> None:
        self.mins = [v]
        self.maxs = [v]
        k = 1
        while (1 << k) <= len(v):
            half = 1 << (k - 1)
            a, b = self.mins[-1], self.maxs[-1]
            self.mins.append(np.minimum(a[:-half], a[half:]))
            self.maxs.append(np.maximum(b[:-half], b[half:]))
            k += 1

    def query(self, lo: I64, hi: I64, which: str) -> F64:
        """min or max of v[lo:hi] (hi exclusive); NaN where the range is empty."""
        out = np.full(len(lo), np.nan)
        ok = hi > lo
        if not ok.any():
            return out
        a, b = lo[ok], hi[ok]
        k = np.floor(np.log2(b - a)).astype(np.int64)
        table = self.mins if which == "min" else self.maxs
        res = np.empty(len(a))
        for level in np.unique(k):
            sel = k == level
            t = table[level]
            x, y = t[a[sel]], t[b[sel] - (1 << level)]
            res[sel] = np.minimum(x, y) if which == "min" else np.maximum(x, y)
        out[ok] = res
        return out


def _window_slope(t: I64, v: F64, lo: I64, hi: I64) -> F64:
    """Least-squares slope (C/h) of v against t over [lo, hi) per query; NaN with fewer than 3 points or < 30 min."""
    if len(t) == 0:
        return np.full(len(lo), np.nan)
    x = (t - t[0]).astype(np.float64) / 3600.0
    c = [np.r_[0.0, np.cumsum(a)] for a in (np.ones_like(x), x, x * x, v, x * v)]
    n, sx, sxx, sy, sxy = (ci[hi] - ci[lo] for ci in c)
    den = n * sxx - sx * sx
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (n * sxy - sx * sy) / den
    span = np.where(hi > lo, x[np.maximum(hi - 1, 0)] - x[np.minimum(lo, len(x) - 1)], 0.0)
    return np.where((n >= 3) & (span >= 0.5) & (den > 1e-9), slope, np.nan)


# ------------------------------------------------------------------------------------------------- features


@dataclass(frozen=True, slots=True)
class Examples:
    """Issue times of one or more stations with their features, and (when known) what followed."""

    station: npt.NDArray[np.str_]
    t: I64
    x: F64  # (n, len(FEATURES))
    rst: F64  # the road surface temperature at issue (the last reading), C
    observed_min: F64  # (n, len(horizons)): min RST in (t, t + H]; NaN where not covered
    horizons: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.t)

    def select(self, mask: npt.NDArray[np.bool_]) -> Examples:
        """The examples where mask holds."""
        return replace(
            self, station=self.station[mask], t=self.t[mask], x=self.x[mask], rst=self.rst[mask],
            observed_min=self.observed_min[mask],
        )  # fmt: skip

    @staticmethod
    def concat(parts: Sequence[Examples], horizons: tuple[int, ...]) -> Examples:
        """Examples of several stations together."""
        if not parts:
            return Examples(
                np.array([], dtype=str), np.array([], dtype=np.int64), np.zeros((0, len(FEATURES))),
                np.array([]), np.zeros((0, len(horizons))), horizons,
            )  # fmt: skip
        return Examples(
            np.concatenate([p.station for p in parts]),
            np.concatenate([p.t for p in parts]),
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.rst for p in parts]),
            np.concatenate([p.observed_min for p in parts]),
            horizons,
        )


def examples(s: Series, issue_t: I64, horizons: Sequence[int] = HORIZONS) -> Examples:
    """Features at each issue time from readings at or before it, and the observed minimum of each horizon where
    every hour of it has a reading (NaN otherwise). Issue times without a road surface temperature in the 3 h
    before them are dropped. Nothing after an issue time enters its features."""
    horizons = tuple(horizons)
    issue_t = np.asarray(issue_t, dtype=np.int64)
    rt, rv = s.rst_t, s.rst_v
    hi = np.searchsorted(rt, issue_t, side="right")  # readings at or before t: [.., hi)
    lo3 = np.searchsorted(rt, issue_t - WINDOW_S, side="right")
    has = hi > lo3
    issue_t, hi, lo3 = issue_t[has], hi[has], lo3[has]
    n = len(issue_t)
    x = np.full((n, len(FEATURES)), np.nan)
    obs = np.full((n, len(horizons)), np.nan)
    if n == 0:
        return Examples(np.array([], dtype=str), issue_t, x, np.array([]), obs, horizons)
    last = hi - 1
    rst = rv[last]
    x[:, 0] = rst
    x[:, 1] = (issue_t - rt[last]) / 60.0
    lo15 = np.searchsorted(rt, issue_t - 5400, side="right")
    x[:, 2] = _window_slope(rt, rv, lo15, hi)
    x[:, 3] = _window_slope(rt, rv, lo3, hi)
    sp = _Sparse(rv)
    x[:, 4] = sp.query(lo3, hi, "max") - rst
    air = _latest(s.air_t, s.air_v, issue_t)
    dew = _latest(s.dew_t, s.dew_v, issue_t)
    x[:, 5] = air - rst
    x[:, 6] = air - dew
    x[:, 7] = dew - rst
    a_hi = np.searchsorted(s.air_t, issue_t, side="right")
    a_lo = np.searchsorted(s.air_t, issue_t - WINDOW_S, side="right")
    x[:, 8] = _window_slope(s.air_t, s.air_v, a_lo, a_hi)
    x[:, 9], x[:, 10], x[:, 11], x[:, 12] = sun(issue_t, s.lat, s.lon)
    for j, h in enumerate(horizons):
        end = np.searchsorted(rt, issue_t + h * 3600, side="right")
        covered = np.ones(n, dtype=bool)
        for k in range(h):  # a reading in every hour of the horizon
            a = np.searchsorted(rt, issue_t + k * 3600, side="right")
            b = np.searchsorted(rt, issue_t + (k + 1) * 3600, side="right")
            covered &= b > a
        m = sp.query(hi, end, "min")
        obs[:, j] = np.where(covered, m, np.nan)
    return Examples(np.full(n, s.station_id), issue_t, x, rst, obs, horizons)


def _latest(t: I64, v: F64, at: I64) -> F64:
    """The newest value in the 3 h up to each time; NaN without one."""
    if len(t) == 0:
        return np.full(len(at), np.nan)
    i = np.searchsorted(t, at, side="right") - 1
    ok = (i >= 0) & (at - t[np.maximum(i, 0)] <= WINDOW_S)
    return np.where(ok, v[np.maximum(i, 0)], np.nan)


# ---------------------------------------------------------------------------- gradient-boosted trees (LAD)


@dataclass(frozen=True, slots=True)
class Trees:
    """A boosted ensemble of depth-limited trees over binned features. Node arrays per tree, concatenated: for
    node i, feature[i] < 0 marks a leaf holding value[i]; otherwise bin <= threshold[i] goes to left[i]."""

    base: float
    feature: I64
    threshold: I64
    left: I64
    right: I64
    value: F64
    roots: I64  # index of each tree's root node
    _cache: list[tuple[I64, I64, F64, int]] = field(default_factory=list, compare=False, repr=False)

    def predict(self, bins: npt.NDArray[np.uint8]) -> F64:
        """Sum of the trees' leaves for each row of binned features (all trees level by level, rows in chunks)."""
        n = bins.shape[0]
        out = np.full(n, self.base)
        if not len(self.roots) or n == 0:
            return out
        feat, thr, leaf, depth = self._dense()
        n_trees, inner = feat.shape
        flat_feat, flat_thr = feat.ravel(), thr.ravel().astype(np.int16)
        base_col = (np.arange(n_trees) * inner)[None, :]
        leaf_flat = leaf.ravel()
        leaf_base = (np.arange(n_trees) * (2**depth))[None, :]
        for a in range(0, n, 4096):
            chunk = bins[a : a + 4096]
            # Every inner node's test at once (a column take), then each row walks down its trees.
            go_right = (chunk[:, flat_feat].astype(np.int16) > flat_thr).view(np.uint8)
            idx = np.zeros((len(chunk), n_trees), dtype=np.int64)
            rows = (np.arange(len(chunk)) * (n_trees * inner))[:, None]
            flat_go = go_right.ravel()
            for _ in range(depth):
                idx = 2 * idx + 1 + flat_go[rows + base_col + idx]
            out[a : a + len(chunk)] += leaf_flat[leaf_base + idx - (2**depth - 1)].sum(axis=1)
        return out

    def _dense(self) -> tuple[I64, I64, F64, int]:
        """The trees as complete binary trees of one depth (a leaf above it repeated below), built once."""
        if self._cache:
            return self._cache[0]

        def depth_of(node: int) -> int:
            if self.feature[node] < 0:
                return 0
            return 1 + max(depth_of(int(self.left[node])), depth_of(int(self.right[node])))

        depth = max(1, max(depth_of(int(r)) for r in self.roots))
        inner, leaves = 2**depth - 1, 2**depth
        feat = np.zeros((len(self.roots), inner), dtype=np.int64)
        thr = np.full((len(self.roots), inner), 255, dtype=np.int64)
        leaf = np.zeros((len(self.roots), leaves))

        def fill(t: int, node: int, pos: int, d: int) -> None:
            if d == depth:
                leaf[t, pos - inner] = self.value[node]
            elif self.feature[node] < 0:  # a leaf above the full depth: both ways lead to its value
                fill(t, node, 2 * pos + 1, d + 1)
                fill(t, node, 2 * pos + 2, d + 1)
            else:
                feat[t, pos], thr[t, pos] = self.feature[node], self.threshold[node]
                fill(t, int(self.left[node]), 2 * pos + 1, d + 1)
                fill(t, int(self.right[node]), 2 * pos + 2, d + 1)

        for t, r in enumerate(self.roots):
            fill(t, int(r), 0, 0)
        self._cache.append((feat, thr, leaf, depth))
        return feat, thr, leaf, depth

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base, "feature": self.feature.tolist(), "threshold": self.threshold.tolist(),
            "left": self.left.tolist(), "right": self.right.tolist(),
            "value": [round(v, 5) for v in self.value.tolist()], "roots": self.roots.tolist(),
        }  # fmt: skip

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Trees:
        return Trees(
            float(d["base"]), np.asarray(d["feature"], dtype=np.int64), np.asarray(d["threshold"], dtype=np.int64),
            np.asarray(d["left"], dtype=np.int64), np.asarray(d["right"], dtype=np.int64),
            np.asarray(d["value"], dtype=np.float64), np.asarray(d["roots"], dtype=np.int64),
        )  # fmt: skip


N_BINS = 32  # bin 0 holds missing values; 1..31 the quantile bins


def bin_edges(x: F64, n_bins: int = N_BINS) -> list[list[float]]:
    """Per feature, the inner quantile edges of its non-missing values."""
    edges: list[list[float]] = []
    for j in range(x.shape[1]):
        col = x[:, j]
        col = col[np.isfinite(col)]
        if len(col) == 0:
            edges.append([])
            continue
        qs = np.unique(np.quantile(col, np.linspace(0, 1, n_bins)[1:-1]))
        edges.append([round(float(q), 4) for q in qs])
    return edges


def binned(x: F64, edges: Sequence[Sequence[float]]) -> npt.NDArray[np.uint8]:
    """Each value's bin: 0 when missing, else 1 + the number of edges below it."""
    out = np.zeros(x.shape, dtype=np.uint8)
    for j, e in enumerate(edges):
        col = x[:, j]
        ok = np.isfinite(col)
        out[ok, j] = 1 + np.searchsorted(np.asarray(e, dtype=np.float64), col[ok], side="left")
    return out


def fit_trees(
    bins: npt.NDArray[np.uint8],
    y: F64,
    *,
    n_trees: int = 150,
    depth: int = 3,
    learning_rate: float = 0.1,
    min_leaf: int = 20,
    subsample: float = 0.7,
    seed: int = 0,
) -> Trees:
    """Least-absolute-deviation gradient boosting (Friedman's LAD_TreeBoost): each tree splits on the signs of
    the residuals, its leaves move by the median residual of their rows."""
    rng = np.random.default_rng(seed)
    n, n_feat = bins.shape
    base = float(np.median(y)) if n else 0.0
    pred = np.full(n, base)
    feature: list[int] = []
    threshold: list[int] = []
    left: list[int] = []
    right: list[int] = []
    value: list[float] = []
    roots: list[int] = []
    offsets = (np.arange(n_feat) * N_BINS).astype(np.int64)
    flat = bins.astype(np.int64) + offsets  # (n, F) codes into one histogram per feature
    for _ in range(n_trees if n >= 2 * min_leaf else 0):
        resid = y - pred
        grad = np.sign(resid)
        rows = np.flatnonzero(rng.random(n) < subsample) if subsample < 1.0 else np.arange(n)
        roots.append(len(feature))
        # Grow on the subsample; every row follows the splits so that each moves by its leaf.
        stack = [(rows, np.arange(n), 0, _new_node(feature, threshold, left, right, value))]
        while stack:
            idx, every, d, node = stack.pop()
            split = _best_split(flat[idx], grad[idx], n_feat, min_leaf) if d < depth else None
            if split is None:
                value[node] = learning_rate * float(np.median(resid[idx])) if len(idx) else 0.0
                pred[every] += value[node]
                continue
            f, b = split
            feature[node], threshold[node] = f, b
            left[node] = _new_node(feature, threshold, left, right, value)
            right[node] = _new_node(feature, threshold, left, right, value)
            go_left, every_left = bins[idx, f] <= b, bins[every, f] <= b
            stack.append((idx[go_left], every[every_left], d + 1, left[node]))
            stack.append((idx[~go_left], every[~every_left], d + 1, right[node]))
    return Trees(
        base, np.asarray(feature, dtype=np.int64), np.asarray(threshold, dtype=np.int64),
        np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64), np.asarray(value, dtype=np.float64),
        np.asarray(roots, dtype=np.int64),
    )  # fmt: skip


def _new_node(feature: list[int], threshold: list[int], left: list[int], right: list[int], value: list[float]) -> int:
    feature.append(-1)
    threshold.append(0)
    left.append(-1)
    right.append(-1)
    value.append(0.0)
    return len(feature) - 1


def _best_split(codes: I64, g: F64, n_feat: int, min_leaf: int) -> tuple[int, int] | None:
    """The (feature, bin) whose split most reduces the squared error of the gradients, or None."""
    n = len(g)
    if n < 2 * min_leaf:
        return None
    size = n_feat * N_BINS
    cnt = np.bincount(codes.ravel(), minlength=size).reshape(n_feat, N_BINS).astype(np.float64)
    tot = np.bincount(codes.ravel(), weights=np.repeat(g, n_feat), minlength=size).reshape(n_feat, N_BINS)
    cl = np.cumsum(cnt, axis=1)[:, :-1]
    gl = np.cumsum(tot, axis=1)[:, :-1]
    g_all = g.sum()
    cr, gr = n - cl, g_all - gl
    ok = (cl >= min_leaf) & (cr >= min_leaf)
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = np.where(ok, gl * gl / cl + gr * gr / cr - g_all * g_all / n, -np.inf)
    f, b = np.unravel_index(int(np.argmax(gain)), gain.shape)
    if not np.isfinite(gain[f, b]) or gain[f, b] <= 1e-9:
        return None
    return int(f), int(b)


# ----------------------------------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class StationLearning:
    """What one station's own nights taught: its mean error per horizon (before shrinkage) and the nights it
    rests on, and a memory of its recent evenings for the reasons."""

    nights: int
    mean_error: tuple[float, ...]  # per horizon: observed minus pooled projection, C
    memory: tuple[tuple[float, ...], ...] = ()  # (epoch s, local hour, rst, slope_3h, air-rst, drop per horizon...)

    def offset(self, j: int, k: float) -> float:
        """The shrunk correction at horizon index j."""
        return self.nights / (self.nights + k) * self.mean_error[j]


@dataclass(frozen=True, slots=True)
class NowcastModel:
    """The fitted parameters: pooled trees per horizon, bands, and each station's learning."""

    horizons: tuple[int, ...]
    edges: tuple[tuple[float, ...], ...]
    trees: tuple[Trees, ...]
    band: tuple[tuple[float, float], ...]  # per horizon: 10th and 90th percentile of held-out errors, C
    mae: tuple[float, ...]  # per horizon: held-out mean absolute error, C
    fitted_at: datetime
    trained_on: Mapping[str, Any]  # stations, nights, examples, period
    stations: Mapping[str, StationLearning] = field(default_factory=dict)
    shrink_nights: float = SHRINK_NIGHTS

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MODEL_VERSION,
            "horizons": list(self.horizons),
            "features": list(FEATURES),
            "edges": [list(e) for e in self.edges],
            "trees": [t.to_json() for t in self.trees],
            "band": [list(b) for b in self.band],
            "mae": list(self.mae),
            "fitted_at": utc_z(self.fitted_at),
            "trained_on": dict(self.trained_on),
            "shrink_nights": self.shrink_nights,
        }

    @staticmethod
    def from_json(d: Mapping[str, Any], stations: Mapping[str, StationLearning] | None = None) -> NowcastModel:
        if d.get("version") != MODEL_VERSION or list(d.get("features", ())) != list(FEATURES):
            raise ValueError("nowcast parameters of another version: refit them (placewatch nowcast fit)")
        return NowcastModel(
            horizons=tuple(int(h) for h in d["horizons"]),
            edges=tuple(tuple(float(v) for v in e) for e in d["edges"]),
            trees=tuple(Trees.from_json(t) for t in d["trees"]),
            band=tuple((float(a), float(b)) for a, b in d["band"]),
            mae=tuple(float(v) for v in d["mae"]),
            fitted_at=datetime.fromisoformat(d["fitted_at"]),
            trained_on=dict(d.get("trained_on", {})),
            stations=dict(stations or {}),
            shrink_nights=float(d.get("shrink_nights", SHRINK_NIGHTS)),
        )


def station_to_json(s: StationLearning) -> dict[str, Any]:
    return {
        "nights": s.nights,
        "mean_error": [round(v, 4) for v in s.mean_error],
        "memory": [[v if math.isfinite(v) else None for v in m] for m in s.memory],  # JSON has no NaN
    }


def station_from_json(d: Mapping[str, Any]) -> StationLearning:
    return StationLearning(
        int(d["nights"]),
        tuple(float(v) for v in d["mean_error"]),
        tuple(tuple(float("nan") if v is None else float(v) for v in m) for m in d.get("memory", ())),
    )


def load_default() -> NowcastModel:
    """The shipped default (pooled over the shared Colorado stations, no station learning)."""
    return NowcastModel.from_json(json.loads(DEFAULT_PATH.read_text(encoding="utf-8")))


def night_of(t: I64) -> I64:
    """A night number per issue time (UTC day of t - 12 h): evenings and the following morning together."""
    return (t - 12 * 3600) // 86400


def fit(
    ex: Examples,
    *,
    fitted_at: datetime,
    n_trees: int = N_TREES,
    depth: int = DEPTH,
    seed: int = 0,
    max_examples: int = 20_000,
) -> NowcastModel:
    """Pooled trees per horizon from examples of all stations; bands and MAE from a fifth of the nights held
    out of the fit (whole nights, so that a night's hours do not vouch for each other)."""
    horizons = ex.horizons
    rng = np.random.default_rng(seed)
    if len(ex) > max_examples:  # a winter of many stations: a random sample of its issue times
        ex = ex.select(_sample_mask(len(ex), max_examples, rng))
    edges = bin_edges(ex.x)
    bins = binned(ex.x, edges)
    nights = night_of(ex.t)
    uniq = np.unique(nights)
    held_nights = uniq[rng.random(len(uniq)) < 0.2] if len(uniq) >= 5 else uniq[:0]
    held = np.isin(nights, held_nights)
    trees, band, mae = [], [], []
    for j, _h in enumerate(horizons):
        drop = ex.rst - ex.observed_min[:, j]
        ok = np.isfinite(drop)
        tr = ok & ~held
        t = fit_trees(bins[tr], np.clip(drop[tr], -MAX_RISE_C, MAX_DROP_C), n_trees=n_trees, depth=depth, seed=seed + j)
        trees.append(t)
        te = ok & held
        if te.sum() >= 20:
            err = -(np.clip(t.predict(bins[te]), -MAX_RISE_C, MAX_DROP_C) - drop[te])  # observed min - projected
            band.append((round(float(np.quantile(err, 0.1)), 3), round(float(np.quantile(err, 0.9)), 3)))
            mae.append(round(float(np.mean(np.abs(err))), 3))
        else:
            band.append((-1.0 - 0.3 * _h, 1.0 + 0.2 * _h))
            mae.append(float("nan"))
    trained = {
        "stations": len(np.unique(ex.station)),
        "station_ids": sorted(str(x) for x in np.unique(ex.station)),  # a backtest on these says it is in-sample
        "nights": len(uniq),
        "examples": len(ex),
        "from": utc_z(datetime.fromtimestamp(int(ex.t.min()), UTC)) if len(ex) else None,
        "to": utc_z(datetime.fromtimestamp(int(ex.t.max()), UTC)) if len(ex) else None,
    }
    return NowcastModel(horizons, tuple(tuple(e) for e in edges), tuple(trees), tuple(band), tuple(mae), fitted_at,
                        trained)  # fmt: skip


def fit_at(ex: Examples, when: datetime) -> NowcastModel:
    """fit() as the backtest's and the daily job's refits call it: the examples and when it is fitted."""
    return fit(ex, fitted_at=when)


def _sample_mask(n: int, k: int, rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, k, replace=False)] = True
    return mask


def pooled_drop(model: NowcastModel, x: F64, upto: int | None = None) -> F64:
    """(n, horizons) projected fall below the present temperature, bounded and never smaller at a longer
    horizon (a minimum over a longer time cannot be warmer); only the first `upto` horizons when given."""
    trees = model.trees[:upto] if upto is not None else model.trees
    bins = binned(x, model.edges)
    out = np.column_stack([t.predict(bins) for t in trees]) if trees else np.zeros((len(x), 0))
    out = np.clip(out, -MAX_RISE_C, MAX_DROP_C)
    return np.maximum.accumulate(out, axis=1)


def learn_stations(
    model: NowcastModel, ex: Examples, *, local_hour: Mapping[str, I64] | None = None
) -> dict[str, StationLearning]:
    """Each station's mean error of the pooled projection per horizon over its own examples, and its memory of
    recent evenings (the last MEMORY_NIGHTS nights), over the last LEARN_NIGHTS days at CORRECTION_HOURS.
    `local_hour` gives each example's local hour per station (for the hours and the reasons); without it every
    hour counts and the hour is left out of the memory."""
    out: dict[str, StationLearning] = {}
    if len(ex) == 0:
        return out
    recent_all = ex.t > int(ex.t.max()) - LEARN_NIGHTS * 86400  # the last LEARN_NIGHTS days (as the backtest)
    if local_hour is not None:  # only at CORRECTION_HOURS (as the backtest); each station's hours follow its examples
        kept: dict[str, I64] = {}
        for sid in np.unique(ex.station):
            if str(sid) in local_hour:
                m = ex.station == sid
                hours = np.asarray(local_hour[str(sid)])
                recent_all[m] &= np.isin(hours, CORRECTION_HOURS)
                kept[str(sid)] = hours[recent_all[m]]
        local_hour = kept
    ex = ex.select(recent_all)
    proj_min = ex.rst[:, None] - pooled_drop(model, ex.x)
    err = ex.observed_min - proj_min
    for sid in np.unique(ex.station):
        m = ex.station == sid
        e = err[m]
        nights = night_of(ex.t[m])
        # The mean error over the station's examples (the backtest replays exactly this, day by day).
        means = [float(np.nanmean(e[:, j])) if np.isfinite(e[:, j]).any() else 0.0 for j in range(e.shape[1])]
        n_nights = len(np.unique(nights))
        recent = np.unique(nights)[-MEMORY_NIGHTS:]
        keep = np.isin(nights, recent)
        xs, ts, rs, obs = ex.x[m][keep], ex.t[m][keep], ex.rst[m][keep], ex.observed_min[m][keep]
        own = local_hour.get(str(sid)) if local_hour is not None else None
        at_hour = own[keep] if own is not None else None
        memory = tuple(
            (
                float(ts[i]),
                float(at_hour[i]) if at_hour is not None else float("nan"),
                round(float(rs[i]), 2),
                round(float(xs[i, 3]), 3) if np.isfinite(xs[i, 3]) else float("nan"),
                round(float(xs[i, 5]), 2) if np.isfinite(xs[i, 5]) else float("nan"),
                *(
                    round(float(rs[i] - obs[i, j]), 2) if np.isfinite(obs[i, j]) else float("nan")
                    for j in range(len(model.horizons))
                ),
            )
            for i in range(len(ts))
        )
        out[str(sid)] = StationLearning(n_nights, tuple(round(v, 4) for v in means), memory)
    return out


# ------------------------------------------------------------------------------------------------ projection


@dataclass(frozen=True, slots=True)
class Projection:
    """A station's projected minimum road surface temperature by each horizon, with its band."""

    station_id: str
    issued_at: datetime
    rst_now: float
    horizons: tuple[int, ...]
    min_c: tuple[float, ...]
    low_c: tuple[float, ...]
    high_c: tuple[float, ...]
    station_nights: int  # the station's own nights the projection has learned from (0: pooled only)
    covered_hours: float  # hours ahead the model projects (its longest horizon)


def project_many(model: NowcastModel, ex: Examples) -> F64:
    """(n, len(horizons)) projected minimum for many examples, each corrected by its station's learning."""
    proj = ex.rst[:, None] - pooled_drop(model, ex.x)
    if model.stations:
        for sid in np.unique(ex.station):
            learn = model.stations.get(str(sid))
            if learn is None:
                continue
            m = ex.station == sid
            proj[m] += np.asarray([learn.offset(j, model.shrink_nights) for j in range(len(model.horizons))])
        proj = np.minimum(proj, ex.rst[:, None] + MAX_RISE_C)
        proj = np.minimum.accumulate(proj, axis=1)
    return proj


def project(model: NowcastModel, s: Series, at: datetime) -> Projection | None:
    """The projection for one station at one time, or None without a road surface temperature in the 3 h
    before it."""
    return project_stations(model, [s], at).get(s.station_id)


def project_stations(model: NowcastModel, stations: Sequence[Series], at: datetime) -> dict[str, Projection]:
    """project() for many stations at once (one pass of the trees): {station id: projection} for those with a
    road surface temperature in the 3 h before `at`."""
    t = np.asarray([int(at.timestamp())], dtype=np.int64)
    parts = [ex for s in stations if len(ex := examples(s, t, model.horizons))]
    if not parts:
        return {}
    ex = Examples.concat(parts, model.horizons)
    mins = project_many(model, ex)
    out = {}
    for i, sid in enumerate(ex.station):
        learn = model.stations.get(str(sid))
        out[str(sid)] = Projection(
            station_id=str(sid),
            issued_at=at,
            rst_now=float(ex.rst[i]),
            horizons=model.horizons,
            min_c=tuple(round(float(v), 2) for v in mins[i]),
            low_c=tuple(round(float(v + b[0]), 2) for v, b in zip(mins[i], model.band, strict=True)),
            high_c=tuple(round(float(v + b[1]), 2) for v, b in zip(mins[i], model.band, strict=True)),
            station_nights=learn.nights if learn is not None else 0,
            covered_hours=float(model.horizons[-1]),
        )
    return out


def similar_evenings(
    learn: StationLearning,
    *,
    horizon_index: int,
    local_hour: int,
    rst: float,
    slope_3h: float | None,
    air_minus_rst: float | None,
) -> tuple[int, float | None]:
    """How many of the station's remembered evenings were like this one (within an hour of the same local time,
    the road within 2.5 C, falling or not alike, air minus road within 2.5 C when both known), and the median
    further fall by the horizon among them (None with fewer than 3)."""
    col = 5 + horizon_index
    falls = []
    for m in learn.memory:
        if col >= len(m) or not math.isfinite(m[col]) or not math.isfinite(m[1]):
            continue
        if abs(((m[1] - local_hour + 12) % 24) - 12) > 1 or abs(m[2] - rst) > 2.5:
            continue
        if slope_3h is not None and math.isfinite(m[3]) and (m[3] < -0.2) != (slope_3h < -0.2):
            continue
        if air_minus_rst is not None and math.isfinite(m[4]) and abs(m[4] - air_minus_rst) > 2.5:
            continue
        falls.append(m[col])
    if len(falls) < 3:
        return len(falls), None
    return len(falls), float(np.median(falls))
