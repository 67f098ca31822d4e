"""Station history files (CSV), row by row: the mapping that says which column is what, and the rules that turn
one row into readings or the reason it cannot be used. Pure: the caller reads the file and passes `now`.

A mapping is a plain document (YAML or JSON, read by the caller), checked whole by `parse_mapping`:

    station: StationName                 # the column holding the station id (required)
    station_prefix: "seattle-"           # optional: put before every id
    name: StationName                    # optional: a column with the station's name
    time:
      column: DateTime                   # required
      format: "%m/%d/%Y %I:%M:%S %p"     # iso8601 (default), epoch_s, epoch_ms, or a strptime pattern
      zone: America/Los_Angeles          # for times written without a zone: an IANA name, UTC or +01:00
      zone_column: tz                    # or a column with a zone name or offset per row
    position: {wkt: StationLocation}     # or {lat: Latitude, lon: Longitude}: where a new station is
    elevation: {column: Elev, unit: m}   # optional; m or ft
    metrics:                             # metric (core.metrics) -> its column and unit
      road_surface_temperature: {column: RoadSurfaceTemperature, unit: degF}
    sensor_errors:                       # optional: a column that says a sensor failed; its metrics are dropped
      - {column: err, failed: [no response, cut cable], metrics: [road_surface_temperature]}
    missing: ["", "NA"]                  # optional: cell values that mean "no reading"
    delimiter: ","                       # optional
    decimal: "."                         # optional: "," for 3,5
    encoding: utf-8                      # optional

A local time that a clock change makes ambiguous (it happened twice) or impossible (it never happened) is a bad
row with that reason: the file does not say which instant it means.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping as AnyMapping
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.metrics import METRICS, check_value, convert
from core.timeparse import EARLIEST, check_time, from_epoch

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
TIME_FORMATS = ("iso8601", "epoch_s", "epoch_ms")
ELEVATION_UNITS = {"m": 1.0, "ft": 0.3048}
DEFAULT_MISSING = ("", "na", "n/a", "nan", "null", "none", "-")
_CACHE_MAX = 200_000  # parsed time texts kept (many rows share a time: every station reports at :00)

# The CoTrip layout of the shared Colorado data (data/colorado-rwis-2025-autumn/): UTC times, degrees C.
# road_surface_status_code is CoTrip's own undocumented code: left out rather than guessed. The road surface
# sensor's error column drops the road values of the rows where it says the sensor failed; "dirty lense" and
# "other" are kept (their road values run on smoothly from the rows before and after).
COTRIP: dict[str, Any] = {
    "station": "station_id",
    "name": "station_name",
    "time": {"column": "valid_time_utc", "format": "iso8601", "zone": "UTC"},
    "position": {"lat": "lat", "lon": "lon"},
    "metrics": {
        "road_surface_temperature": {"column": "road_surface_temp_c", "unit": "degC"},
        "air_temperature": {"column": "air_temp_c", "unit": "degC"},
        "dew_point": {"column": "dew_point_c", "unit": "degC"},
        "relative_humidity": {"column": "rh_pct", "unit": "%"},
        "freezing_point": {"column": "road_surface_freezing_point_c", "unit": "degC"},
    },
    "sensor_errors": [
        {
            "column": "road_surface_sensor_error",
            "failed": ["no response", "cut cable"],
            "metrics": ["road_surface_temperature", "freezing_point"],
        }
    ],
}


class MappingError(ValueError):
    """The mapping is refused; the text names the key and the reason."""


class FileRefused(ValueError):
    """The whole file is refused (nothing is loaded); `line` is the 1-based line that shows why."""

    def __init__(self, reason: str, *, line: int | None = None) -> None:
        self.reason = reason
        self.line = line
        super().__init__(f"line {line}: {reason}" if line is not None else reason)


@dataclass(frozen=True, slots=True)
class MetricColumn:
    """A metric read from a column, given in a unit."""

    metric: str
    column: str
    unit: str | None


@dataclass(frozen=True, slots=True)
class SensorErrorRule:
    """When `column` holds one of `failed`, the values of `metrics` in that row are not loaded."""

    column: str
    failed: frozenset[str]
    metrics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Mapping:
    """Which column of a history file is what (see the module docstring)."""

    station: str
    time_column: str
    metrics: tuple[MetricColumn, ...]
    time_format: str = "iso8601"
    zone: str | None = None
    zone_column: str | None = None
    station_prefix: str = ""
    name: str | None = None
    lat: str | None = None
    lon: str | None = None
    wkt: str | None = None
    elevation: str | None = None
    elevation_unit: str = "m"
    sensor_errors: tuple[SensorErrorRule, ...] = ()
    missing: frozenset[str] = frozenset(DEFAULT_MISSING)
    delimiter: str = ","
    decimal: str = "."
    encoding: str = "utf-8"

    def columns(self) -> list[str]:
        """Every column the mapping names, once each, in mapping order."""
        names = [self.station, self.time_column, self.zone_column, self.name, self.lat, self.lon, self.wkt]
        names += [self.elevation, *(m.column for m in self.metrics), *(r.column for r in self.sensor_errors)]
        return list(dict.fromkeys(n for n in names if n))


@dataclass(frozen=True, slots=True)
class StationInfo:
    """What a file says about a station: enough to register it as a road station."""

    id: str
    name: str | None = None
    lon: float | None = None
    lat: float | None = None
    elevation_m: float | None = None


@dataclass(slots=True)
class Row:
    """The readings of one line: numeric values in stored units, labels for categorical metrics, and the reasons
    for values that were dropped (the rest of the row is kept)."""

    station: str
    us: int  # time, microseconds since 1970-01-01 UTC
    values: list[tuple[str, float]] = field(default_factory=list)
    labels: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    name: str | None = None
    position: tuple[float, float] | None = None  # (lon, lat)
    position_problem: str | None = None
    elevation_m: float | None = None


# -- the mapping ---------------------------------------------------------------------------------------------

_KEYS = frozenset(
    {
        "station",
        "station_prefix",
        "name",
        "time",
        "position",
        "elevation",
        "metrics",
        "sensor_errors",
        "missing",
        "delimiter",
        "decimal",
        "encoding",
    }
)


def parse_mapping(doc: object) -> Mapping:
    """Check a mapping document (a dict from YAML or JSON) whole; raise MappingError naming the key."""
    if not isinstance(doc, AnyMapping):
        raise MappingError(f"the mapping must be an object of keys ({', '.join(sorted(_KEYS))}), got {_kind(doc)}")
    unknown = sorted(str(k) for k in doc if k not in _KEYS)
    if unknown:
        raise MappingError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    station = _column(doc, "station", required=True)
    assert station is not None
    time = doc.get("time")
    if isinstance(time, str):
        time = {"column": time}
    if not isinstance(time, AnyMapping):
        raise MappingError("time: required, an object with column, format and zone (or zone_column)")
    _only(time, "time", {"column", "format", "zone", "zone_column"})
    time_column = _column(time, "column", required=True, path="time.")
    assert time_column is not None
    fmt = time.get("format", "iso8601")
    if not isinstance(fmt, str) or not fmt.strip():
        raise MappingError(f"time.format: {', '.join(TIME_FORMATS)} or a strptime pattern, got {fmt!r}")
    if fmt not in TIME_FORMATS and "%" not in fmt:
        raise MappingError(f"time.format: {fmt!r} is none of {', '.join(TIME_FORMATS)} and not a strptime pattern")
    zone = time.get("zone")
    if zone is not None:
        if not isinstance(zone, str):
            raise MappingError(f"time.zone: an IANA zone name (Europe/London), UTC or an offset (+01:00), got {zone!r}")
        got = parse_zone(zone)
        if isinstance(got, str):
            raise MappingError(f"time.zone: {got}")
    zone_column = _column(time, "zone_column", path="time.")
    if zone is not None and zone_column is not None:
        raise MappingError("time: give zone or zone_column, not both")
    metrics = _metrics(doc.get("metrics"))
    lat = lon = wkt = None
    position = doc.get("position")
    if position is not None:
        if not isinstance(position, AnyMapping):
            raise MappingError("position: an object with wkt, or lat and lon (column names)")
        _only(position, "position", {"lat", "lon", "wkt"})
        lat = _column(position, "lat", path="position.")
        lon = _column(position, "lon", path="position.")
        wkt = _column(position, "wkt", path="position.")
        if (lat is None) != (lon is None):
            raise MappingError("position: lat and lon go together")
        if wkt is not None and lat is not None:
            raise MappingError("position: give wkt, or lat and lon, not both")
        if wkt is None and lat is None:
            raise MappingError("position: give wkt, or lat and lon")
    elevation, elevation_unit = None, "m"
    elev = doc.get("elevation")
    if elev is not None:
        if isinstance(elev, str):
            elev = {"column": elev}
        if not isinstance(elev, AnyMapping):
            raise MappingError("elevation: an object with column and unit (m or ft)")
        _only(elev, "elevation", {"column", "unit"})
        elevation = _column(elev, "column", required=True, path="elevation.")
        elevation_unit = str(elev.get("unit", "m"))
        if elevation_unit not in ELEVATION_UNITS:
            raise MappingError(f"elevation.unit: m or ft, got {elevation_unit!r}")
    rules = _sensor_errors(doc.get("sensor_errors"), {m.metric for m in metrics})
    missing = doc.get("missing", list(DEFAULT_MISSING))
    if not isinstance(missing, list) or not all(isinstance(x, str) for x in missing):
        raise MappingError(f"missing: a list of texts meaning no reading, got {missing!r}")
    delimiter = _char(doc, "delimiter", ",")
    decimal = _char(doc, "decimal", ".")
    if decimal not in ".,":
        raise MappingError(f"decimal: '.' or ',', got {decimal!r}")
    if decimal == delimiter:
        raise MappingError("decimal and delimiter cannot be the same character")
    encoding = doc.get("encoding", "utf-8")
    if not isinstance(encoding, str) or not encoding:
        raise MappingError(f"encoding: a text encoding name such as utf-8 or cp1252, got {encoding!r}")
    prefix = doc.get("station_prefix", "")
    if not isinstance(prefix, str):
        raise MappingError(f"station_prefix: a text, got {prefix!r}")
    return Mapping(
        station=station,
        station_prefix=prefix,
        time_column=time_column,
        time_format=fmt,
        zone=zone,
        zone_column=zone_column,
        metrics=metrics,
        name=_column(doc, "name"),
        lat=lat,
        lon=lon,
        wkt=wkt,
        elevation=elevation,
        elevation_unit=elevation_unit,
        sensor_errors=rules,
        missing=frozenset(x.strip().lower() for x in missing),
        delimiter=delimiter,
        decimal=decimal,
        encoding=encoding,
    )


def _metrics(doc: object) -> tuple[MetricColumn, ...]:
    if not isinstance(doc, AnyMapping) or not doc:
        raise MappingError("metrics: required, an object of metric name -> {column, unit}")
    out: list[MetricColumn] = []
    for metric, spec in doc.items():
        path = f"metrics.{metric}"
        known = METRICS.get(str(metric))
        if known is None:
            raise MappingError(f"{path}: unknown metric; known: {', '.join(sorted(METRICS))}")
        if isinstance(spec, str):
            spec = {"column": spec}
        if not isinstance(spec, AnyMapping):
            raise MappingError(f"{path}: an object with column and unit")
        _only(spec, path, {"column", "unit"})
        column = _column(spec, "column", required=True, path=f"{path}.")
        assert column is not None
        unit = spec.get("unit")
        if known.categories is not None:
            if unit is not None:
                raise MappingError(f"{path}.unit: {metric} is one of {', '.join(sorted(known.categories))}: no unit")
        else:
            if not isinstance(unit, str) or not unit.strip():
                raise MappingError(f"{path}.unit: required (for example {known.unit}); a wrong unit is silent harm")
            try:
                stored, _ = convert(known.name, 0.0, unit)
            except ValueError as exc:
                raise MappingError(f"{path}.unit: {exc}") from None
            if stored != known.name:
                raise MappingError(f"{path}.unit: {unit!r} is a unit of {stored}, not of {metric}")
        out.append(MetricColumn(known.name, column, unit))
    return tuple(out)


def _sensor_errors(doc: object, metrics: set[str]) -> tuple[SensorErrorRule, ...]:
    if doc is None:
        return ()
    if not isinstance(doc, list):
        raise MappingError("sensor_errors: a list of {column, failed, metrics}")
    out: list[SensorErrorRule] = []
    for i, spec in enumerate(doc):
        path = f"sensor_errors[{i}]"
        if not isinstance(spec, AnyMapping):
            raise MappingError(f"{path}: an object with column, failed and metrics")
        _only(spec, path, {"column", "failed", "metrics"})
        column = _column(spec, "column", required=True, path=f"{path}.")
        assert column is not None
        failed = spec.get("failed")
        if not isinstance(failed, list) or not failed or not all(isinstance(x, str) for x in failed):
            raise MappingError(f"{path}.failed: a list of the column's values that mean the sensor failed")
        names = spec.get("metrics")
        if not isinstance(names, list) or not names or not all(isinstance(x, str) for x in names):
            raise MappingError(f"{path}.metrics: a list of the metrics that sensor measures")
        stray = sorted(set(names) - metrics)
        if stray:
            raise MappingError(f"{path}.metrics: {', '.join(stray)} not in metrics")
        out.append(SensorErrorRule(column, frozenset(x.strip().lower() for x in failed), tuple(names)))
    return tuple(out)


def _column(doc: AnyMapping[Any, Any], key: str, *, required: bool = False, path: str = "") -> str | None:
    v = doc.get(key)
    if v is None:
        if required:
            raise MappingError(f"{path}{key}: required, a column name")
        return None
    if not isinstance(v, str) or not v.strip():
        raise MappingError(f"{path}{key}: a column name, got {v!r}")
    return v.strip()


def _char(doc: AnyMapping[Any, Any], key: str, default: str) -> str:
    v = doc.get(key, default)
    if not isinstance(v, str) or len(v) != 1:
        raise MappingError(f"{key}: one character, got {v!r}")
    return v


def _only(doc: AnyMapping[Any, Any], path: str, keys: set[str]) -> None:
    unknown = sorted(str(k) for k in doc if k not in keys)
    if unknown:
        raise MappingError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(keys))}")


def _kind(value: object) -> str:
    return "a list" if isinstance(value, list) else f"{type(value).__name__} {value!r}"[:60]


# -- zones, times, places ------------------------------------------------------------------------------------

_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})?$")


def parse_zone(text: str) -> tzinfo | str:
    """A zone as a mapping or a zone column gives it: UTC, a fixed offset (+01:00, -0500) or an IANA name; or
    the reason it is none of those."""
    t = text.strip()
    if t.upper() in ("UTC", "Z", "GMT", "+00:00", "+0000", "-00:00"):
        return UTC
    m = _OFFSET.match(t)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 23 or minutes > 59:
            return f"offset {text!r} is out of range"
        sign = 1 if m.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(t)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{text!r} is not UTC, an offset such as +01:00 or a known IANA zone name such as America/Denver"


def localize(naive: datetime, zone: tzinfo, zone_name: str) -> datetime | str:
    """A wall-clock time in `zone` as an aware UTC time, or why it names no single instant (a clock change)."""
    if not isinstance(zone, ZoneInfo):
        return naive.replace(tzinfo=zone).astimezone(UTC)
    early = naive.replace(tzinfo=zone, fold=0)
    late = naive.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early.astimezone(UTC)
    shown = naive.isoformat(sep=" ")
    if early.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return (
            f"local time {shown} happened twice in {zone_name} (the clocks went back) and the file does not say "
            "which: give the offset or UTC"
        )
    return f"local time {shown} did not happen in {zone_name} (the clocks went forward past it)"


_WKT_POINT = re.compile(
    r"^\s*(?:SRID=\d+\s*;\s*)?POINT\s*(?:ZM|Z|M)?\s*\(\s*(\S+)\s+(\S+)(?:\s+\S+){0,2}\s*\)\s*$", re.IGNORECASE
)


def parse_wkt_point(text: str) -> tuple[float, float] | str:
    """A WKT POINT (lon lat) as (lon, lat), or the reason it is not one."""
    m = _WKT_POINT.match(text)
    if not m:
        return f"position {_short(text)} is not a WKT POINT (lon lat)"
    try:
        lon, lat = float(m.group(1)), float(m.group(2))
    except ValueError:
        return f"position {_short(text)} is not a WKT POINT (lon lat)"
    return check_position(lon, lat)


def check_position(lon: float, lat: float) -> tuple[float, float] | str:
    """(lon, lat) if it is a place on Earth, else why not."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return f"position {lon}, {lat} is not a pair of finite numbers"
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        return f"position lon {lon:g}, lat {lat:g} is outside longitude -180..180 / latitude -90..90"
    if lon == 0.0 and lat == 0.0:
        return "position 0, 0 is a placeholder, not a road station's place"
    return lon, lat


# -- rows ----------------------------------------------------------------------------------------------------


class RowReader:
    """Turns the rows of one file into Rows, or reasons, given its header. Built once per file."""

    def __init__(
        self,
        mapping: Mapping,
        header: Sequence[str],
        *,
        now: datetime,
        max_future: timedelta = timedelta(minutes=10),
        earliest: datetime = EARLIEST,
    ) -> None:
        names = [h.strip() for h in header]
        if not any(names):
            raise FileRefused("the first line must be a header naming the columns", line=1)
        index: dict[str, int] = {}
        for i, n in enumerate(names):
            index.setdefault(n, i)
        missing = [c for c in mapping.columns() if c not in index]
        if missing:
            have = ", ".join(n for n in names if n)
            raise FileRefused(
                f"missing column(s) {', '.join(missing)} (the header has {_short(have, 300)}): "
                "is this the right --format or mapping?",
                line=1,
            )
        self.mapping = mapping
        self.width = len(names)
        self._now = now
        self._max_future = max_future
        self._earliest = earliest
        self._station = index[mapping.station]
        self._time = index[mapping.time_column]
        self._zone_col = index[mapping.zone_column] if mapping.zone_column else None
        zone = parse_zone(mapping.zone) if mapping.zone is not None else None
        assert not isinstance(zone, str)  # parse_mapping checked it
        self._zone = zone
        self._name = index[mapping.name] if mapping.name else None
        self._lat = index[mapping.lat] if mapping.lat else None
        self._lon = index[mapping.lon] if mapping.lon else None
        self._wkt = index[mapping.wkt] if mapping.wkt else None
        self._elev = index[mapping.elevation] if mapping.elevation else None
        self._elev_factor = ELEVATION_UNITS[mapping.elevation_unit]
        # (metric, column, unit to convert from or None, low, high, categorical): the physical range of
        # core.metrics checked inline, check_value called for the reason when a value is outside it
        self._metrics = [
            (
                m.metric,
                index[m.column],
                m.unit if m.unit is not None and convert(m.metric, 1.0, m.unit) != (m.metric, 1.0) else None,
                METRICS[m.metric].low,
                METRICS[m.metric].high,
                METRICS[m.metric].categories is not None,
            )
            for m in mapping.metrics
        ]
        self._rules = [(index[r.column], r) for r in mapping.sensor_errors]
        self._missing = mapping.missing
        self._comma = mapping.decimal == ","
        self._times: dict[tuple[str, str | None], int | str] = {}
        self._zones: dict[str, tzinfo | str] = {}

    def parse(self, fields: Sequence[str]) -> Row | str:
        """The readings of one data row, or the reason the whole row cannot be used."""
        if len(fields) != self.width:
            if len(fields) == 1 and not fields[0].strip():
                return "empty line"
            return f"has {len(fields)} fields, the header has {self.width}"
        station = fields[self._station].strip()
        if not station or station.lower() in self._missing:
            return f"no station id in column {self.mapping.station}"
        if "\x00" in station:
            return "the station id holds a NUL character"
        station = self.mapping.station_prefix + station
        zone_text = fields[self._zone_col].strip() if self._zone_col is not None else None
        us = self._time_us(fields[self._time].strip(), zone_text)
        if isinstance(us, str):
            return us
        row = Row(station=station, us=us)
        drop: dict[str, str] = {}
        for col, rule in self._rules:
            said = fields[col].strip()
            if said.lower() in rule.failed:
                for metric in rule.metrics:
                    drop[metric] = f"{rule.column} says {said!r}"
        missing = self._missing
        for metric, col, unit, low, high, categorical in self._metrics:
            raw = fields[col].strip()
            if raw.lower() in missing:
                continue
            if metric in drop:
                row.dropped.append(f"{drop[metric]}: {metric} {raw} is not trusted")
                continue
            if categorical:
                why = check_value(metric, raw)
                if why is None:
                    row.labels.append((metric, raw.lower()))
                else:
                    row.dropped.append(why)
                continue
            try:
                value = float(raw.replace(",", ".") if self._comma else raw)
            except ValueError:
                row.dropped.append(f"{metric} {_short(raw)} is not a number")
                continue
            if unit is not None:
                value = convert(metric, value, unit)[1]
            if low <= value <= high:
                row.values.append((metric, value))
            else:
                why = check_value(metric, value) or f"{metric} {value!r} is outside its physical range"
                row.dropped.append(f"{why} (given {_short(raw)} {unit})" if unit is not None else why)
        if self._name is not None:
            name = fields[self._name].strip()
            row.name = name if name and name.lower() not in missing else None
        self._place(fields, row)
        return row

    def _place(self, fields: Sequence[str], row: Row) -> None:
        got: tuple[float, float] | str | None = None
        if self._wkt is not None:
            text = fields[self._wkt].strip()
            got = parse_wkt_point(text) if text else None
        elif self._lat is not None and self._lon is not None:
            lat, lon = fields[self._lat].strip(), fields[self._lon].strip()
            if lat and lon:
                try:
                    got = check_position(float(lon), float(lat))
                except ValueError:
                    got = f"position lat {_short(lat)}, lon {_short(lon)} is not a pair of numbers"
        if isinstance(got, str):
            row.position_problem = got
        else:
            row.position = got
        if self._elev is not None:
            text = fields[self._elev].strip()
            try:
                elev = float(text) * self._elev_factor if text else None
            except ValueError:
                elev = None
            row.elevation_m = elev if elev is not None and -500.0 <= elev <= 9000.0 else None

    def _time_us(self, text: str, zone_text: str | None) -> int | str:
        key = (text, zone_text)
        got = self._times.get(key)
        if got is None:
            if len(self._times) >= _CACHE_MAX:
                self._times.clear()
            got = self._times[key] = self._parse_time(text, zone_text)
        return got

    def _parse_time(self, text: str, zone_text: str | None) -> int | str:
        if not text:
            return f"no time in column {self.mapping.time_column}"
        fmt = self.mapping.time_format
        try:
            if fmt == "epoch_s" or fmt == "epoch_ms":
                ts = from_epoch(float(text), unit="ms" if fmt == "epoch_ms" else "s")
            else:
                ts = datetime.fromisoformat(text) if fmt == "iso8601" else datetime.strptime(text, fmt)
        except ValueError:
            return f"time {_short(text)} does not match the format {fmt}"
        except OverflowError:
            return f"time {_short(text)} is out of range"
        if ts.tzinfo is None:
            zone, name = self._zone, self.mapping.zone
            if zone_text is not None:
                if not zone_text:
                    return f"time {text} has no zone and column {self.mapping.zone_column} is empty"
                given = self._zone_for(zone_text)
                if isinstance(given, str):
                    return given
                zone, name = given, zone_text
            if zone is None or name is None:
                return f"time {text} has no zone and the mapping gives none (time.zone or time.zone_column)"
            local = localize(ts, zone, name)
            if isinstance(local, str):
                return local
            ts = local
        else:
            try:
                ts = ts.astimezone(UTC)
            except OverflowError:
                return f"time {_short(text)} is out of range"
        why = check_time(ts, self._now, max_future=self._max_future, earliest=self._earliest)
        if why is not None:
            return why
        return (ts - UNIX_EPOCH) // _US

    def _zone_for(self, text: str) -> tzinfo | str:
        got = self._zones.get(text)
        if got is None:
            got = self._zones[text] = parse_zone(text)
        return got


def parse_station_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, prefix: str = ""
) -> dict[str, StationInfo]:
    """A table of stations (id, name, lat, lon, elevation in metres; usual spellings of those column names), as
    CoTrip's stations.csv gives them; raise FileRefused naming the line."""
    names = [h.strip().lower() for h in header]

    def pick(*options: str) -> int | None:
        for o in options:
            if o in names:
                return names.index(o)
        return None

    sid = pick("id", "stid", "station_id", "station")
    if sid is None:
        raise FileRefused("the stations table needs an id column (id, stid, station_id or station)", line=1)
    name, lat, lon = pick("name", "station_name"), pick("lat", "latitude"), pick("lon", "lng", "longitude")
    elev = pick("elevation", "elev", "elevation_m", "elev_m")
    out: dict[str, StationInfo] = {}
    for n, fields in enumerate(rows, start=2):
        if len(fields) != len(names):
            if not any(f.strip() for f in fields):
                continue
            raise FileRefused(f"has {len(fields)} fields, the header has {len(names)}", line=n)
        key = fields[sid].strip()
        if not key:
            raise FileRefused("no station id", line=n)
        try:
            la = float(fields[lat]) if lat is not None and fields[lat].strip() else None
            lo = float(fields[lon]) if lon is not None and fields[lon].strip() else None
            el = float(fields[elev]) if elev is not None and fields[elev].strip() else None
        except ValueError:
            raise FileRefused("latitude, longitude and elevation must be numbers", line=n) from None
        if la is not None and lo is not None and isinstance(check_position(lo, la), str):
            raise FileRefused(str(check_position(lo, la)), line=n)
        nm = fields[name].strip() if name is not None else ""
        out[prefix + key] = StationInfo(prefix + key, nm or None, lo, la, el)
    return out


def _short(value: str, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
