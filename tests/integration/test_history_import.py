"""`placewatch history import` on real PostgreSQL: slices of the shared Colorado and Seattle files, cut at test
time, with station ids made unique per test so tests sharing the run's database never collide."""

from __future__ import annotations

import csv
import gzip
import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from core.history import COTRIP, RowReader, parse_mapping
from store.history import import_history
from tests.services import ROOT

pytestmark = pytest.mark.integration

SHARED = ROOT.parent / "shared" / "data"
COLORADO = SHARED / "colorado-rwis-2025-autumn" / "cotrip_rwis_2025-09-15_to_2025-10-27.csv"
STATIONS = SHARED / "colorado-rwis-2025-autumn" / "stations.csv"
SEATTLE = SHARED / "seattle-road-weather-2020-02.csv"


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (the ../shared folder beside the repository)")


def _cli(*args: str, database_url: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACEWATCH_")}
    env["PLACEWATCH_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "placewatch.cli", "history", "import", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _colorado_slice(tmp: Path, uid: str, stations: int = 4, per_station: int = 120) -> tuple[Path, list[str]]:
    """The first readings of a few Colorado stations that have road temperatures, ids made unique, and their
    stations.csv beside them."""
    _need(COLORADO)
    wanted = ["CO027", "CO030", "CO184", "CO058"][:stations]
    out = tmp / "colorado" / "cotrip_slice.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    count = dict.fromkeys(wanted, 0)
    with COLORADO.open(newline="") as src, out.open("w", newline="") as dst:
        rows = csv.reader(src)
        w = csv.writer(dst)
        w.writerow(next(rows))
        for r in rows:
            if r[0] in count and count[r[0]] < per_station:
                count[r[0]] += 1
                w.writerow([f"T{uid}-{r[0]}", *r[1:]])
            if all(n >= per_station for n in count.values()):
                break
    with STATIONS.open(newline="") as src, (out.parent / "stations.csv").open("w", newline="") as dst:
        rows = csv.reader(src)
        w = csv.writer(dst)
        w.writerow(next(rows))
        for r in rows:
            if r[0] in count:
                w.writerow([f"T{uid}-{r[0]}", *r[1:]])
    return out, [f"T{uid}-{s}" for s in wanted]


def _counts(db, prefix: str) -> dict[str, int]:
    like = prefix + "%"
    q = {
        "devices": "SELECT count(*) FROM devices WHERE id LIKE %s",
        "series": "SELECT count(*) FROM series WHERE device_id LIKE %s",
        "readings": "SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id LIKE %s",
        "hourly": "SELECT coalesce(sum(h.n), 0) FROM readings_hourly h JOIN series s ON s.id = h.series_id "
        "WHERE s.device_id LIKE %s",
        "stale_days": "SELECT count(*) FROM hourly_days d JOIN series s ON s.id = d.series_id "
        "WHERE s.device_id LIKE %s",
        "late_windows": "SELECT count(*) FROM late_windows WHERE device_id LIKE %s",
        "registry_loads": "SELECT count(*) FROM registry_loads WHERE loaded_by LIKE %s",
    }
    return {
        k: db.execute(v, (like if k != "registry_loads" else "%history import%",)).fetchone()[0] for k, v in q.items()
    }


def test_a_colorado_slice_loads_registers_its_stations_and_loads_again_as_nothing_new(database_url, db, uid, tmp_path):
    path, ids = _colorado_slice(tmp_path, uid)
    first = _cli(str(path), "--format", "cotrip", database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert "4 new road stations registered" in first.stdout
    after_first = _counts(db, f"T{uid}-")
    assert after_first["devices"] == 4 and after_first["readings"] > 1000
    # Every reading is in the hourly rollup, exactly once.
    assert after_first["hourly"] == after_first["readings"]
    # Each station where the file puts it, with its elevation from the stations.csv beside the file.
    geom, props, kind, last_seen = db.execute(
        "SELECT geometry, properties, kind, last_seen FROM devices WHERE id = %s", (ids[0],)
    ).fetchone()
    assert kind == "road_station" and geom == {"type": "Point", "coordinates": [-105.526, 39.039]}
    assert props["name"] == "Wilkerson Pass (37)" and props["elevation_m"] == 2884.5
    assert last_seen is not None and last_seen.year == 2025

    second = _cli(str(path), "--format", "cotrip", database_url=database_url)
    assert second.returncode == 0, second.stderr
    assert " 0 new," in second.stdout and "0 new road stations registered" in second.stdout
    assert _counts(db, f"T{uid}-") == after_first


def test_a_known_station_is_left_alone_and_a_failed_road_sensor_is_listed(database_url, db, uid, tmp_path):
    path, ids = _colorado_slice(tmp_path, uid, stations=3)
    db.execute(
        """INSERT INTO devices (id, kind, name, geometry, source)
           VALUES (%s, 'road_station', 'Ours', '{"type": "Point", "coordinates": [-1.9, 52.5]}', 'registry')""",
        (ids[0],),
    )
    bad = tmp_path / "bad.csv"
    r = _cli(str(path), "--format", "cotrip", "--bad-rows", str(bad), database_url=database_url)
    assert r.returncode == 0, r.stderr
    assert "2 new road stations registered" in r.stdout and "1 of them already known" in r.stdout
    assert db.execute("SELECT name, geometry FROM devices WHERE id = %s", (ids[0],)).fetchone() == (
        "Ours",
        {"type": "Point", "coordinates": [-1.9, 52.5]},
    )
    # CO184 reports 'no response' from its road sensor in some rows: the air values of those rows are kept.
    listed = list(csv.DictReader(bad.open()))
    assert listed and all(x["what"] == "value" for x in listed)
    assert all("road_surface_sensor_error says 'no response'" in x["reason"] for x in listed)
    line = int(listed[0]["line"])
    raw = path.read_text().splitlines()[line - 1].split(",")
    assert raw[0] == ids[2] and raw[-1] == "no response"
    assert f"line {line}:" in r.stdout


def _seattle_slice(tmp: Path, uid: str) -> tuple[Path, Path]:
    _need(SEATTLE)
    rows = SEATTLE.read_text().splitlines()
    keep = [rows[0], *[r for r in rows[1:] if r.startswith(("AuroraBridge,", "MagnoliaBridge,"))][:3000]]
    path = tmp / "seattle.csv"
    path.write_text("\n".join(keep) + "\n")
    mapping = yaml.safe_load((ROOT / "registry" / "mappings" / "seattle.yaml").read_text())
    mapping["station_prefix"] = f"sea{uid}-"
    mpath = tmp / "seattle.yaml"
    mpath.write_text(yaml.safe_dump(mapping))
    return path, mpath


def test_the_seattle_file_loads_through_the_shipped_mapping_and_the_api_shows_it(
    database_url, db, uid, tmp_path, api_url, token_for
):
    path, mapping = _seattle_slice(tmp_path, uid)
    r = _cli(str(path), "--format", "csv", "--mapping", str(mapping), database_url=database_url)
    assert r.returncode == 0, r.stderr
    lines = path.read_text().splitlines()[1:]
    unique = {tuple(x.split(",")[i] for i in (0, 3)) for x in lines}  # station, RecordId
    assert len(unique) < len(lines)  # the slice keeps the file's exact duplicates
    counts = _counts(db, f"sea{uid}-")
    assert counts["readings"] == 2 * len(unique) and counts["devices"] == 2
    assert f" {2 * len(unique):,} new, {2 * (len(lines) - len(unique)):,} already stored or repeated" in r.stdout
    dev = f"sea{uid}-AuroraBridge"
    assert db.execute("SELECT geometry FROM devices WHERE id = %s", (dev,)).fetchone()[0] == {
        "type": "Point",
        "coordinates": [-122.347278, 47.643174],
    }
    # The API's raw points and hourly buckets show the history at once, in degrees C at UTC times.
    mine = [x.split(",") for x in lines if x.startswith("AuroraBridge,")]
    by_time = {}
    for f in mine:
        local = datetime.strptime(f[2], "%m/%d/%Y %I:%M:%S %p")
        by_time[local + timedelta(hours=8)] = (float(f[4]) - 32) * 5 / 9  # February: PST, UTC-8
    start, end = min(by_time), max(by_time) + timedelta(minutes=1)
    headers = token_for("highways")
    params = {
        "metric": "road_surface_temperature",
        "start": f"{start:%Y-%m-%dT%H:%M:%S}Z",
        "end": f"{end:%Y-%m-%dT%H:%M:%S}Z",
    }
    raw = httpx.get(f"{api_url}/api/v1/devices/{dev}/readings", params=params, headers=headers)
    assert raw.status_code == 200, raw.text
    points = raw.json()["points"]
    assert len(points) == len(by_time)
    assert points[0]["value"] == pytest.approx(by_time[min(by_time)])
    hourly = httpx.get(f"{api_url}/api/v1/devices/{dev}/readings", params={**params, "bucket": "1h"}, headers=headers)
    assert hourly.status_code == 200, hourly.text
    buckets = hourly.json()["points"]
    assert sum(b["count"] for b in buckets) == len(by_time)
    first_hour = min(by_time).replace(minute=0)
    values = [v for t, v in by_time.items() if t.replace(minute=0) == first_hour]
    assert buckets[0]["avg"] == pytest.approx(sum(values) / len(values))


def test_a_bad_file_is_refused_whole_naming_the_line_and_nothing_is_written(database_url, db, uid, tmp_path):
    path, _ = _colorado_slice(tmp_path, uid, stations=2, per_station=60)
    data = path.read_bytes().splitlines(keepends=True)
    data[90] = data[90].replace(b"+00:00", b"+00:00\xff")  # not UTF-8, deep in the file
    path.write_bytes(b"".join(data))
    r = _cli(str(path), "--format", "cotrip", database_url=database_url)
    assert r.returncode == 1
    assert "refused, nothing was loaded" in r.stderr and "line 91" in r.stderr and "not utf-8 text" in r.stderr
    assert _counts(db, f"T{uid}-")["devices"] == 0
    assert _counts(db, f"T{uid}-")["readings"] == 0
    # The wrong format: the header lacks the columns, refused at line 1.
    _need(SEATTLE)
    r = _cli(str(SEATTLE), "--format", "cotrip", database_url=database_url)
    assert r.returncode == 1 and "line 1: missing column(s) station_id" in r.stderr
    # A bad mapping names its key; a missing file is unreadable.
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "station: id\ntime: {column: t, zone: Europe/Londres}\nmetrics: {air_temperature: {column: a}}\n"
    )
    r = _cli(str(path), "--format", "csv", "--mapping", str(mapping), database_url=database_url)
    assert r.returncode == 2 and "time.zone: 'Europe/Londres'" in r.stderr
    r = _cli(str(tmp_path / "nowhere.csv"), "--format", "cotrip", database_url=database_url)
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_a_file_of_nothing_but_bad_rows_is_refused_and_bad_rows_otherwise_are_listed(database_url, db, uid, tmp_path):
    mapping = tmp_path / "m.json"
    mapping.write_text(
        '{"station": "id", "time": {"column": "t", "format": "%Y-%m-%d %H:%M", "zone": "Europe/London"},'
        ' "position": {"lat": "lat", "lon": "lon"},'
        ' "metrics": {"road_surface_temperature": {"column": "rst", "unit": "degC"}}}'
    )
    s = f"uk{uid}"
    all_bad = tmp_path / "all_bad.csv"
    all_bad.write_text(f"id,t,lat,lon,rst\n{s},2025-03-30 01:30,52.1,-1.5,2.0\n{s},2025-10-26 01:30,52.1,-1.5,2.0\n")
    r = _cli(str(all_bad), "--format", "csv", "--mapping", str(mapping), database_url=database_url)
    assert r.returncode == 1 and "no reading of the file could be loaded" in r.stderr and "line 2" in r.stderr
    assert _counts(db, s)["devices"] == 0
    some_bad = tmp_path / "some_bad.csv"
    some_bad.write_text(
        f"id,t,lat,lon,rst\n{s},2025-03-30 00:30,52.1,-1.5,2.0\n{s},2025-03-30 01:30,52.1,-1.5,2.1\n"
        f"{s},2025-03-30 02:30,52.1,-1.5,95.0\n{s},2025-03-30 03:30,52.1,-1.5\n{s},2025-03-30 04:30,52.1,-1.5,1.0\n"
    )
    r = _cli(str(some_bad), "--format", "csv", "--mapping", str(mapping), database_url=database_url)
    assert r.returncode == 0, r.stderr
    assert "bad rows (not loaded): 2; values not loaded: 1" in r.stdout
    assert "line 3: local time 2025-03-30 01:30:00 did not happen in Europe/London" in r.stdout
    assert "line 4: value not loaded: road_surface_temperature 95 degC is outside the physical range" in r.stdout
    assert "line 5: has 4 fields, the header has 5" in r.stdout
    assert _counts(db, s)["readings"] == 2


def test_a_dry_run_counts_everything_and_writes_nothing_and_a_gzip_file_reads_the_same(database_url, db, uid, tmp_path):
    path, _ = _colorado_slice(tmp_path, uid, stations=2, per_station=40)
    before = _counts(db, f"T{uid}-")
    r = _cli(str(path), "--format", "cotrip", "--dry-run", database_url=database_url)
    assert r.returncode == 0, r.stderr
    assert "dry run, nothing written: would load 80 rows" in r.stdout
    assert "2 new road stations would be registered" in r.stdout
    assert _counts(db, f"T{uid}-") == before
    packed = path.with_name("cotrip_slice.csv.gz")
    packed.write_bytes(gzip.compress(path.read_bytes()))
    z = _cli(str(packed), "--format", "cotrip", database_url=database_url)
    assert z.returncode == 0, z.stderr
    assert "loaded 80 rows" in z.stdout and "2 new road stations registered" in z.stdout
    assert _counts(db, f"T{uid}-")["readings"] > 0


def _rows(text: str, mapping: dict, now: datetime):
    reader = csv.reader(io.StringIO(text))
    rr = RowReader(parse_mapping(mapping), next(reader), now=now)
    return ((n, rr.parse(r)) for n, r in enumerate(reader, start=2))


def test_many_batches_load_what_one_does_and_a_late_write_marks_a_packed_day_stale(database_url, db, uid):
    """Recent history, as a council's own export gives it, loaded 7 readings to a COPY: the writer's rollup and
    the stale mark of a packed day (store.hourly_days) hold as they do for ingest."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    day = (now - timedelta(days=4)).replace(hour=0)
    mapping = {
        "station": "id",
        "time": {"column": "t", "format": "iso8601", "zone": "UTC"},
        "position": {"wkt": "where"},
        "metrics": {"road_surface_temperature": {"column": "rst", "unit": "degC"}},
    }
    s = f"pk{uid}"
    lines = ["id,t,where,rst"] + [
        f"{s},{(day + timedelta(minutes=20 * i)).isoformat()},POINT (-1.5 52.1),{i / 10}" for i in range(30)
    ]
    first = "\n".join(lines[:16])
    stats = import_history(db, _rows(first, mapping, now), source="first.csv", batch_readings=7)
    assert stats.new == 15 and stats.registered == [s]
    sid = db.execute("SELECT id FROM series WHERE device_id = %s", (s,)).fetchone()[0]
    # Pretend the day was packed already (as the scheduler's leader does 30 h after it ends).
    db.execute("UPDATE hourly_days SET means = %s, version = 1 WHERE series_id = %s", (b"\0" * 192, sid))
    packed = db.execute("SELECT count(*) FROM hourly_days WHERE series_id = %s AND means IS NULL", (sid,)).fetchone()
    assert packed == (0,)
    again = import_history(db, _rows("\n".join(lines), mapping, now), source="all.csv", batch_readings=7)
    assert again.new == 15 and again.duplicates == 15 and again.registered == []
    marked = db.execute("SELECT day, version, means FROM hourly_days WHERE series_id = %s", (sid,)).fetchall()
    assert len(marked) == 1 and marked[0][0] == day.date() and marked[0][1] > 1 and marked[0][2] is None
    hours = db.execute(
        "SELECT hour, n, total FROM readings_hourly WHERE series_id = %s ORDER BY hour", (sid,)
    ).fetchall()
    assert [n for _, n, _ in hours] == [3] * 10
    assert hours[0][2] == pytest.approx(0.0 + 0.1 + 0.2)
    assert db.execute("SELECT last_ts, last_value FROM series_latest WHERE id = %s", (sid,)).fetchone() == (
        day + timedelta(minutes=20 * 29),
        pytest.approx(2.9),
    )


def test_the_whole_colorado_file_parses_into_the_cotrip_layout():
    """The built-in layout fits the shared file: no bad rows, and only failed-sensor road values and a few
    physically impossible air and dew point values are dropped."""
    _need(COLORADO)
    with COLORADO.open(newline="") as f:
        rows = csv.reader(f)
        rr = RowReader(parse_mapping(COTRIP), next(rows), now=datetime.now(UTC))
        parsed = [rr.parse(r) for r in rows]
    assert len(parsed) == 63_032 and not [p for p in parsed if isinstance(p, str)]
    road = sum(1 for p in parsed for m, _ in p.values if m == "road_surface_temperature")
    dropped = [d for p in parsed for d in p.dropped]
    failed = [d for d in dropped if "road_surface_sensor_error says" in d]
    assert road + len(failed) == 48_097  # the README's rows with a road surface temperature
    assert len(dropped) - len(failed) < 50


def test_a_corrected_file_keeps_the_stored_values_and_says_which_differ(database_url, db, uid, tmp_path):
    mapping = tmp_path / "m.json"
    mapping.write_text(
        '{"station": "id", "time": {"column": "t", "format": "iso8601"}, "position": {"lat": "lat", "lon": "lon"},'
        ' "metrics": {"road_surface_temperature": {"column": "rst", "unit": "degC"}}}'
    )
    s = f"fix{uid}"
    first = tmp_path / "first.csv"
    first.write_text(
        f"id,t,lat,lon,rst\n{s},2025-01-10T06:00:00Z,52.1,-1.5,2.0\n{s},2025-01-10T07:00:00Z,52.1,-1.5,1.0\n"
    )
    assert _cli(str(first), "--format", "csv", "--mapping", str(mapping), database_url=database_url).returncode == 0
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(first.read_text().replace("07:00:00Z,52.1,-1.5,1.0", "07:00:00Z,52.1,-1.5,-0.5"))
    r = _cli(str(fixed), "--format", "csv", "--mapping", str(mapping), database_url=database_url)
    assert r.returncode == 0, r.stderr
    assert " 0 new," in r.stdout and "1 readings of the file were stored already with another value" in r.stdout
    assert f"{s} road_surface_temperature at 2025-01-10 07:00:00 UTC: stored 1, the file says -0.5" in r.stdout
    assert db.execute(
        "SELECT r.value FROM readings r JOIN series se ON se.id = r.series_id WHERE se.device_id = %s ORDER BY r.ts",
        (s,),
    ).fetchall() == [(2.0,), (1.0,)]
