"""Station history rows: mappings, units, zones, clock changes and the reasons for bad rows (core.history)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from core.history import (
    COTRIP,
    FileRefused,
    MappingError,
    Row,
    RowReader,
    parse_mapping,
    parse_station_table,
    parse_wkt_point,
)

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "registry" / "mappings"
SHARED = ROOT.parent / "shared" / "data"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
COTRIP_HEADER = (
    "station_id,valid_time_utc,station_name,lat,lon,air_temp_c,dew_point_c,rh_pct,road_surface_temp_c,"
    "road_surface_status_code,road_surface_black_ice,road_surface_freezing_point_c,road_surface_friction_index,"
    "avg_wind_speed,visibility,road_surface_sensor_error"
).split(",")
SEATTLE_HEADER = ["StationName", "StationLocation", "DateTime", "RecordId", "RoadSurfaceTemperature", "AirTemperature"]


def _utc(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def _cotrip(line: str) -> Row | str:
    reader = RowReader(parse_mapping(COTRIP), COTRIP_HEADER, now=NOW)
    return reader.parse(next(csv.reader([line])))


def _seattle() -> RowReader:
    return RowReader(parse_mapping(yaml.safe_load((MAPPINGS / "seattle.yaml").read_text())), SEATTLE_HEADER, now=NOW)


def _mapping(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "station": "id",
        "time": {"column": "t", "format": "%Y-%m-%d %H:%M", "zone": "America/Los_Angeles"},
        "metrics": {"road_surface_temperature": {"column": "rst", "unit": "degC"}},
    }
    doc.update(over)
    return doc


def test_a_cotrip_row_gives_its_metrics_in_stored_units_at_its_utc_time():
    row = _cotrip(
        "CO027,2025-09-15 01:30:00+00:00,Wilkerson Pass (37),39.039,-105.526,9.7,-7.1,29.0,21.80,4,,,,3.5,,none"
    )
    assert isinstance(row, Row)
    assert row.station == "CO027" and row.name == "Wilkerson Pass (37)"
    assert _utc(row.us) == datetime(2025, 9, 15, 1, 30, tzinfo=UTC)
    assert dict(row.values) == {
        "air_temperature": 9.7,
        "dew_point": -7.1,
        "relative_humidity": 29.0,
        "road_surface_temperature": 21.8,
    }
    assert row.position == (-105.526, 39.039) and row.dropped == []


def test_a_failed_road_sensor_keeps_the_air_values_and_drops_the_road_value_with_the_reason():
    row = _cotrip("CO184,2025-09-15 13:00:00+00:00,X,39.1,-105.1,10.9,3.0,60.0,13.20,2,,-2.5,,1.0,,no response")
    assert isinstance(row, Row)
    assert dict(row.values) == {"air_temperature": 10.9, "dew_point": 3.0, "relative_humidity": 60.0}
    assert len(row.dropped) == 2
    assert "road_surface_sensor_error says 'no response'" in row.dropped[0] and "13.20" in row.dropped[0]
    assert "freezing_point -2.5" in row.dropped[1]


def test_empty_cells_are_no_reading_and_the_status_code_is_never_guessed():
    row = _cotrip("CO024,2025-09-15 01:30:00+00:00,Alameda,39.697,-104.829,19.8,,,,7,,,,1.9,2000.0,")
    assert isinstance(row, Row)
    assert row.values == [("air_temperature", 19.8)] and row.labels == [] and row.dropped == []


def test_a_value_outside_its_physical_range_is_dropped_with_the_ingest_reason():
    row = _cotrip("CO1,2025-09-15 01:30:00+00:00,X,39.6,-104.8,-99.0,2.0,101.5,abc,,,,,,,none")
    assert isinstance(row, Row)
    assert row.values == [("dew_point", 2.0)]
    reasons = " | ".join(row.dropped)
    assert "air_temperature -99 degC is outside the physical range -60 to 60 degC" in reasons
    assert "relative_humidity 101.5 % is outside the physical range" in reasons
    assert "road_surface_temperature 'abc' is not a number" in reasons


def test_seattle_rows_convert_fahrenheit_local_time_and_a_wkt_point():
    row = _seattle().parse(
        ["AuroraBridge", "POINT (-122.347278 47.643174)", "02/24/2020 02:18:00 AM", "3753392", "44.51", "41.58"]
    )
    assert isinstance(row, Row)
    assert row.station == "AuroraBridge"
    assert _utc(row.us) == datetime(2020, 2, 24, 10, 18, tzinfo=UTC)  # PST is UTC-8
    values = dict(row.values)
    assert values["road_surface_temperature"] == pytest.approx((44.51 - 32) * 5 / 9)
    assert values["air_temperature"] == pytest.approx(5.3222, abs=1e-4)
    assert row.position == (-122.347278, 47.643174)


def test_pm_times_and_summer_time_use_the_zone_of_the_date():
    reader = _seattle()
    row = reader.parse(["A", "POINT (-122.3 47.6)", "07/01/2020 01:05:00 PM", "1", "70", "68"])
    assert isinstance(row, Row) and _utc(row.us) == datetime(2020, 7, 1, 20, 5, tzinfo=UTC)  # PDT is UTC-7


def test_a_local_time_the_clocks_skip_or_repeat_is_a_bad_row_saying_so():
    reader = _seattle()
    skipped = reader.parse(["A", "POINT (-122.3 47.6)", "03/08/2020 02:30:00 AM", "1", "40", "40"])
    assert isinstance(skipped, str) and "did not happen in America/Los_Angeles" in skipped
    twice = reader.parse(["A", "POINT (-122.3 47.6)", "11/01/2020 01:30:00 AM", "1", "40", "40"])
    assert isinstance(twice, str) and "happened twice in America/Los_Angeles" in twice
    after = reader.parse(["A", "POINT (-122.3 47.6)", "11/01/2020 02:30:00 AM", "1", "40", "40"])
    assert isinstance(after, Row) and _utc(after.us) == datetime(2020, 11, 1, 10, 30, tzinfo=UTC)


def test_a_time_with_its_own_offset_wins_over_the_mapping_zone_and_a_zone_column_is_per_row():
    reader = RowReader(
        parse_mapping(_mapping(time={"column": "t", "format": "iso8601", "zone_column": "tz"})),
        ["id", "t", "tz", "rst"],
        now=NOW,
    )
    a = reader.parse(["s1", "2025-01-10T06:00:00", "Europe/London", "1.5"])
    b = reader.parse(["s1", "2025-07-10T06:00:00", "Europe/London", "1.5"])
    c = reader.parse(["s1", "2025-07-10T06:00:00", "+02:00", "1.5"])
    d = reader.parse(["s1", "2025-07-10T06:00:00Z", "Mars/Olympus", "1.5"])
    assert isinstance(a, Row) and _utc(a.us) == datetime(2025, 1, 10, 6, tzinfo=UTC)
    assert isinstance(b, Row) and _utc(b.us) == datetime(2025, 7, 10, 5, tzinfo=UTC)
    assert isinstance(c, Row) and _utc(c.us) == datetime(2025, 7, 10, 4, tzinfo=UTC)
    assert isinstance(d, Row) and _utc(d.us) == datetime(2025, 7, 10, 6, tzinfo=UTC)
    bad = reader.parse(["s1", "2025-07-10T06:00:00", "Mars/Olympus", "1.5"])
    assert isinstance(bad, str) and "'Mars/Olympus' is not UTC, an offset" in bad


def test_kelvin_and_epoch_seconds_and_a_comma_decimal():
    doc = _mapping(
        time={"column": "t", "format": "epoch_s"},
        metrics={"air_temperature": {"column": "air", "unit": "K"}},
        delimiter=";",
        decimal=",",
    )
    reader = RowReader(parse_mapping(doc), ["id", "t", "air"], now=NOW)
    row = reader.parse(["s", "1736488800", "271,15"])
    assert isinstance(row, Row)
    assert _utc(row.us) == datetime(2025, 1, 10, 6, tzinfo=UTC)
    assert row.values == [("air_temperature", pytest.approx(-2.0))]


def test_bad_rows_name_their_reason():
    reader = RowReader(parse_mapping(_mapping()), ["id", "t", "rst"], now=NOW)
    assert reader.parse(["s", "2025-01-10 06:00"]) == "has 2 fields, the header has 3"
    assert reader.parse(["", "2025-01-10 06:00", "1"]) == "no station id in column id"
    assert "does not match the format %Y-%m-%d %H:%M" in str(reader.parse(["s", "10/01/2025 06:00", "1"]))
    assert "more than 10 minutes in the future" in str(reader.parse(["s", "2027-01-10 06:00", "1"]))
    assert "before 2000-01-01" in str(reader.parse(["s", "1999-12-31 06:00", "1"]))
    naive = RowReader(parse_mapping(_mapping(time={"column": "t", "format": "iso8601"})), ["id", "t", "rst"], now=NOW)
    assert "has no zone and the mapping gives none" in str(naive.parse(["s", "2025-01-10T06:00:00", "1"]))


def test_a_file_without_the_mapped_columns_is_refused_at_line_one():
    with pytest.raises(FileRefused) as exc:
        RowReader(parse_mapping(COTRIP), SEATTLE_HEADER, now=NOW)
    assert exc.value.line == 1 and "missing column(s) station_id, valid_time_utc" in exc.value.reason


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        (_mapping(metrics={"road_temp": {"column": "x", "unit": "degC"}}), "metrics.road_temp: unknown metric"),
        (_mapping(metrics={"air_temperature": {"column": "x"}}), "metrics.air_temperature.unit: required"),
        (_mapping(metrics={"air_temperature": {"column": "x", "unit": "degR"}}), "unknown unit 'degR'"),
        (_mapping(metrics={"relative_humidity": {"column": "x", "unit": "degC"}}), "unknown unit 'degC'"),
        (_mapping(time={"column": "t", "zone": "Europe/Londn"}), "time.zone: 'Europe/Londn' is not UTC"),
        (_mapping(time={"column": "t", "format": "dd/mm/yyyy"}), "time.format: 'dd/mm/yyyy' is none of"),
        (_mapping(time={"column": "t", "zone": "UTC", "zone_column": "z"}), "give zone or zone_column, not both"),
        (_mapping(position={"lat": "la"}), "position: lat and lon go together"),
        (_mapping(stations="x"), "unknown key(s) stations"),
        ({"time": "t", "metrics": {}}, "station: required"),
        ([1, 2], "the mapping must be an object"),
    ],
)
def test_a_bad_mapping_is_refused_naming_the_key(doc, needle):
    with pytest.raises(MappingError) as exc:
        parse_mapping(doc)
    assert needle in str(exc.value)


def test_wkt_points_and_impossible_places():
    assert parse_wkt_point("POINT (-122.3 47.6)") == (-122.3, 47.6)
    assert parse_wkt_point("SRID=4326;point z(1.5 52.1 30)") == (1.5, 52.1)
    assert "not a WKT POINT" in str(parse_wkt_point("LINESTRING (1 2, 3 4)"))
    assert "outside longitude" in str(parse_wkt_point("POINT (47.6 -122.3)"))
    assert "placeholder" in str(parse_wkt_point("POINT (0 0)"))


def test_the_shipped_cotrip_mapping_is_the_built_in_layout():
    shipped = yaml.safe_load((MAPPINGS / "cotrip.yaml").read_text())
    assert parse_mapping(shipped) == parse_mapping(COTRIP)


def test_a_station_table_gives_names_positions_and_elevations():
    table = parse_station_table(
        ["stid", "station_name", "lat", "lon", "elev"],
        [["CO007", "C-470 @ Wadsworth (39)", "39.5545", "-105.0842", "1676"]],
    )
    assert table["CO007"].elevation_m == 1676.0 and table["CO007"].lon == -105.0842
    with pytest.raises(FileRefused) as exc:
        parse_station_table(["stid", "lat", "lon"], [["A", "1", "2"], ["B", "north", "2"]])
    assert exc.value.line == 3


def test_the_shared_seattle_file_parses_whole_through_the_shipped_mapping():
    path = SHARED / "seattle-road-weather-2020-02.csv"
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (the ../shared folder beside the repository)")
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        reader = RowReader(parse_mapping(yaml.safe_load((MAPPINGS / "seattle.yaml").read_text())), next(rows), now=NOW)
        parsed = [reader.parse(r) for r in rows]
    bad = [p for p in parsed if isinstance(p, str)]
    good = [p for p in parsed if isinstance(p, Row)]
    assert bad == [] and len(good) == 32_074
    assert len({(p.station, p.us) for p in good}) == 21_419  # the README's unique station/time pairs
    assert all(-30 < v < 40 for p in good for _, v in p.values)  # degrees C now, not F
