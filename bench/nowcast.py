"""bench.nowcast: how good tonight's calls are on real stations nobody here wrote, against simple baselines.

    python -m bench.nowcast [--file CSV] [--folds 2] [--seeds 1,2,3] [--winter-stations 100] [--write-default]

The shared Colorado CoTrip file (39 stations, six weeks of autumn) is read with the product's own CoTrip mapping
(core.history: sensor errors 'no response' and 'cut cable' drop the road values). Leave-stations-out: the stations
are split into folds; for each fold a default model is fitted on the other folds' stations only, then the backtest
(core.gritting.backtest.replay: the default, each station's learning as of each issue time, pooled refits on the
scored stations' own earlier nights) is scored on the fold's stations, issue times every hour 17:00-23:00 local
(America/Denver). The table pools the folds' counts and repeats with several random splits; persistence and a
straight-line trend are scored on the same issue times in the same run, and so is a perfect forecast (the observed
minimum itself): with the trigger above 0 C it still calls the nights that stayed just above freezing, so its FAR
and CSI are the best any forecast can score here.

Then a winter of `--winter-stations` stations (the file's stations copied and shifted in time to 150 nights)
is backtested end to end in core, timed against the issue's 60 s on 2 cores.

--write-default fits the shipped default (core/gritting/nowcast_default.json) on all the file's stations.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import yaml

from bench.common import ROOT, Figure, load_now, print_table
from core import history
from core.gritting import backtest as B
from core.gritting import learned as L

DATA = ROOT.parent / "shared" / "data" / "colorado-rwis-2025-autumn" / "cotrip_rwis_2025-09-15_to_2025-10-27.csv"
TZ = ZoneInfo("America/Denver")
# Another network, climate and season, read through the product's own mapping: 8 City of Seattle stations over
# two February days (1-minute readings, degrees F, local times without a zone).
SEATTLE = ROOT.parent / "shared" / "data" / "seattle-road-weather-2020-02.csv"
SEATTLE_MAPPING = ROOT / "registry" / "mappings" / "seattle.yaml"
METRIC = {"road_surface_temperature": "rst", "air_temperature": "air", "dew_point": "dew"}


def read_cotrip(path: Path) -> list[L.Series]:
    """Each station's series, read as `placewatch history import --format cotrip` reads the file."""
    return read_history(path, history.COTRIP)


def read_history(path: Path, mapping_doc: object) -> list[L.Series]:
    """Each station's series, read as `placewatch history import --format csv --mapping` reads the file."""
    mapping = history.parse_mapping(mapping_doc)
    cols: dict[str, dict[str, tuple[list[float], list[float]]]] = defaultdict(
        lambda: {k: ([], []) for k in ("rst", "air", "dew")}
    )
    pos: dict[str, tuple[float, float]] = {}
    with path.open(newline="", encoding=mapping.encoding) as f:
        rows = csv.reader(f, delimiter=mapping.delimiter)
        reader = history.RowReader(mapping, next(rows), now=datetime.now(UTC))
        for fields in rows:
            row = reader.parse(fields)
            if isinstance(row, str):
                continue
            if row.position is not None:
                pos[row.station] = row.position
            for metric, value in row.values:
                key = METRIC.get(metric)
                if key is not None:
                    ts, vs = cols[row.station][key]
                    ts.append(row.us / 1e6)
                    vs.append(value)
    out = []
    for sid, c in sorted(cols.items()):
        lon, lat = pos.get(sid, (None, None))
        out.append(L.series(sid, c, lat=lat, lon=lon))  # type: ignore[arg-type]
    return [s for s in out if not s.empty]


def fit_default(stations: list[L.Series], first: date, last: date) -> L.NowcastModel:
    """A default fitted on these stations' nights at the learning hours."""
    t = B.local_hours_epochs(first - timedelta(days=1), last, B.LEARN_HOURS, TZ)
    ex = L.Examples.concat([L.examples(s, t, L.HORIZONS) for s in stations], L.HORIZONS)
    return L.fit(ex, fitted_at=datetime.now(UTC))


def _span(stations: list[L.Series]) -> tuple[date, date]:
    lo = min(int(s.rst_t[0]) for s in stations)
    hi = max(int(s.rst_t[-1]) for s in stations)
    return datetime.fromtimestamp(lo, TZ).date(), datetime.fromtimestamp(hi, TZ).date()


def leave_stations_out(stations: list[L.Series], folds: int, seed: int, horizons: tuple[int, ...]) -> dict:
    """Counts pooled over the folds: {(horizon, method): [hits, misses, fa, cn, n, abs err sum, err sum]}."""
    first, last = _span(stations)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(stations))
    acc: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0.0, 0.0])
    for k in range(folds):
        test = [stations[i] for i in order[k::folds]]
        train = [stations[i] for i in order if i not in set(order[k::folds].tolist())]
        default = fit_default(train, first, last)
        r = B.replay(
            test, start=first, end=last, horizons=horizons, issue_hours=range(17, 24), tz=TZ, default=default,
            fit=L.fit_at,
        )  # fmt: skip
        for j, h in enumerate(r.horizons):
            obs = r.examples.observed_min[:, j]
            methods = (("nowcast", r.model[:, j]), ("persistence", r.persistence[:, j]),
                       ("linear_trend", r.linear_trend[:, j]), ("perfect", obs))  # fmt: skip
            for name, proj_j in methods:
                c = B.contingency(proj_j, obs, 0.5)
                ok = np.isfinite(obs)
                a = acc[(h, name)]
                a[0] += c["hits"]
                a[1] += c["misses"]
                a[2] += c["false_alarms"]
                a[3] += c["correct_negatives"]
                a[4] += c["n"]
                a[5] += float(np.abs(proj_j[ok] - obs[ok]).sum())
                a[6] += float((proj_j[ok] - obs[ok]).sum())
    return acc


def in_sample(stations: list[L.Series], horizons: tuple[int, ...]) -> list[tuple[str, int, dict]]:
    """The features' best case, for scale: trees fitted on every station's nights and scored on those same
    stations' issue times (in-sample, which flatters any model), the default's size and a much larger one."""
    first, last = _span(stations)
    learn_t = B.local_hours_epochs(first - timedelta(days=1), last, B.LEARN_HOURS, TZ)
    score_t = B.local_hours_epochs(first, last, range(17, 24), TZ)
    learn = L.Examples.concat([L.examples(s, learn_t, horizons) for s in stations], horizons)
    score = L.Examples.concat([L.examples(s, score_t, horizons) for s in stations], horizons)
    out = []
    for label, n_trees, depth in (("in-sample", 150, 3), ("in-sample 600x5", 600, 5)):
        model = L.fit(learn, fitted_at=datetime.now(UTC), n_trees=n_trees, depth=depth, max_examples=10**9)
        proj = score.rst[:, None] - L.pooled_drop(model, score.x)
        for j, h in enumerate(horizons):
            out.append((label, h, B.contingency(proj[:, j], score.observed_min[:, j], 0.5)))
    return out


def out_of_network(path: Path, mapping: Path, horizons: tuple[int, ...]) -> list[tuple[str, int, dict]]:
    """The shipped default (fitted on the Colorado stations) on another network's stations at every hour of the
    day, as the product would use it there on its first days: nothing of these stations learned yet."""
    stations = read_history(path, yaml.safe_load(mapping.read_text(encoding="utf-8")))
    tz = ZoneInfo(str(yaml.safe_load(mapping.read_text(encoding="utf-8"))["time"]["zone"]))
    lo = min(int(s.rst_t[0]) for s in stations)
    hi = max(int(s.rst_t[-1]) for s in stations)
    first, last = datetime.fromtimestamp(lo, tz).date(), datetime.fromtimestamp(hi, tz).date()
    r = B.replay(stations, start=first, end=last, horizons=horizons, issue_hours=range(24), tz=tz,
                 default=L.load_default())  # fmt: skip
    ev = B.evaluation(r, 0.5)
    out = []
    for row in ev["horizons"]:
        out.append(("nowcast", row["hours"], row))
        out += [(name, row["hours"], row["baselines"][name]) for name in ("persistence", "linear_trend")]
    return out


def winter(stations: list[L.Series], n: int, nights: int = 150) -> list[L.Series]:
    """n stations over `nights` nights: the file's stations, copied with new ids and shifted by whole multiples
    of their span so that the copies run on one after another."""
    out = []
    span_s = (max(int(s.rst_t[-1]) for s in stations) - min(int(s.rst_t[0]) for s in stations)) // 86400 * 86400
    repeats = max(1, int(np.ceil(nights * 86400 / span_s)))
    for i in range(n):
        s = stations[i % len(stations)]
        parts: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {k: ([], []) for k in ("rst", "air", "dew")}
        for r in range(repeats):
            shift = r * span_s
            for k, (ts, vs) in (("rst", (s.rst_t, s.rst_v)), ("air", (s.air_t, s.air_v)), ("dew", (s.dew_t, s.dew_v))):
                parts[k][0].append(ts + shift)
                parts[k][1].append(vs)
        cols = {k: (np.concatenate(a), np.concatenate(b)) for k, (a, b) in parts.items()}
        out.append(L.series(f"{s.station_id}-{i}", cols, lat=s.lat, lon=s.lon))  # type: ignore[arg-type]
    return out


def main(argv: list[str] | None = None) -> list[Figure]:
    ap = argparse.ArgumentParser(prog="python -m bench.nowcast")
    ap.add_argument("--file", type=Path, default=DATA)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--winter-stations", type=int, default=100)
    ap.add_argument("--write-default", action="store_true")
    a = ap.parse_args(argv)
    if not a.file.exists():
        print(f"bench.nowcast: no CoTrip file at {a.file} (the shared data beside the repository): give --file")
        return []
    started = time.perf_counter()
    stations = read_cotrip(a.file)
    print(f"{len(stations)} stations with road surface temperatures read in {time.perf_counter() - started:.1f} s")
    if a.write_default:
        first, last = _span(stations)
        model = fit_default(stations, first, last)
        L.DEFAULT_PATH.write_text(json.dumps(model.to_json(), separators=(",", ":")) + "\n", encoding="utf-8")
        print(f"wrote {L.DEFAULT_PATH} ({L.DEFAULT_PATH.stat().st_size / 1024:.0f} KiB): {model.trained_on}")
        return []

    horizons = (3, 6)
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    total: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0.0, 0.0])
    for seed in seeds:
        acc = leave_stations_out(stations, a.folds, seed, horizons)
        for key, v in acc.items():
            total[key] = [x + y for x, y in zip(total[key], v, strict=True)]
    print(
        f"\nleave-stations-out backtest: {a.folds} folds x {len(seeds)} splits, issue times hourly 17:00-23:00 "
        "America/Denver, event: observed minimum <= 0 C, call: projected minimum <= trigger 0.5 C"
    )
    print(f"{'horizon':>7} {'method':<13} {'n':>6} {'MAE C':>6} {'bias':>6} {'hits':>5} {'miss':>5} {'f.al':>5} "
          f"{'POD':>5} {'FAR':>5} {'CSI':>5}")  # fmt: skip
    figures = []
    targets = {3: (0.7, 0.7), 6: (1.5, 0.5)}
    for h in horizons:
        for name in ("nowcast", "persistence", "linear_trend", "perfect"):
            hits, miss, fa, _cn, n, abs_sum, err_sum = total[(h, name)]
            mae, bias = abs_sum / n, err_sum / n
            pod = hits / max(1, hits + miss)
            far = fa / max(1, hits + fa)
            csi = hits / max(1, hits + miss + fa)
            print(f"{h:>5} h {name:<13} {int(n):>6} {mae:>6.2f} {bias:>+6.2f} {int(hits):>5} {int(miss):>5} "
                  f"{int(fa):>5} {pod:>5.2f} {far:>5.2f} {csi:>5.2f}")  # fmt: skip
            if name == "nowcast":
                ref = total[(h, "persistence")]
                p_hits, p_miss, p_fa = total[(h, "perfect")][:3]
                best_csi = p_hits / max(1, p_hits + p_miss + p_fa)
                best_far = p_fa / max(1, p_hits + p_fa)
                mae_t, csi_t = targets[h]
                figures += [
                    Figure(f"nowcast MAE {h} h", round(mae, 2), "C", f"persistence {ref[5] / ref[4]:.2f}",
                           round(mae / (ref[5] / ref[4]), 2), f"<= {mae_t}", mae <= mae_t, load_now()),
                    Figure(f"frost calls CSI {h} h", round(csi, 2), "", f"perfect forecast {best_csi:.2f}",
                           round(csi / best_csi, 2) if best_csi else None, f">= {csi_t}", csi >= csi_t, load_now()),
                    Figure(f"frost calls FAR {h} h", round(far, 2), "", f"perfect forecast {best_far:.2f}", None,
                           "<= 0.3", far <= 0.3, load_now()),
                ]  # fmt: skip

    print(
        "\nfor scale, the features' best case: trees fitted on all these stations' nights and scored on the same "
        "stations and issue times (in-sample: it flatters; 600x5 is 600 trees of depth 5, which overfits)"
    )
    for label, h, c in in_sample(stations, horizons):
        counts = f"{c['hits']:>5} {c['misses']:>5} {c['false_alarms']:>5}"
        rates = f"{c['pod']:>5.2f} {c['far']:>5.2f} {c['csi']:>5.2f}"
        print(f"{h:>5} h {label:<15} {c['n']:>6} {c['mae_c']:>6.2f} {c['bias_c']:>+6.2f} {counts} {rates}")

    if SEATTLE.exists():
        print(
            "\nanother network: the shipped default on 8 City of Seattle stations, 24-25 February 2020, issue times "
            "every hour of the day (America/Los_Angeles), nothing of these stations learned yet"
        )
        for label, h, c in out_of_network(SEATTLE, SEATTLE_MAPPING, horizons):
            counts = f"{c['hits']:>5} {c['misses']:>5} {c['false_alarms']:>5}"
            print(f"{h:>5} h {label:<15} {c['n']:>6} {c['mae_c']:>6.2f} {c['bias_c']:>+6.2f} {counts}")

    if a.winter_stations:
        many = winter(stations, a.winter_stations)
        first, last = _span(many)
        default = L.load_default()
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        r = B.replay(
            many, start=first, end=last, horizons=horizons, issue_hours=range(17, 24), tz=TZ, default=default,
            fit=L.fit_at,
        )  # fmt: skip
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        ev = B.evaluation(r, 0.5)
        print(
            f"\nwinter backtest: {ev['stations']} stations, {(last - first).days} nights, {ev['issues']} issue times, "
            f"{len(r.pooled_fits)} pooled refits: {wall:.1f} s wall, {cpu:.1f} s CPU (load {load_now():.1f})"
        )
        figures.append(
            Figure(f"backtest {ev['stations']} stations x {(last - first).days} nights", round(wall, 1), "s",
                   "", None, "< 60", wall < 60, load_now())
        )  # fmt: skip
    print_table("bench.nowcast", figures)
    return figures


if __name__ == "__main__":
    main()
