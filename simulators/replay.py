"""Replays of real public data through the native MQTT path: Seattle road weather stations, Glasgow homes.

Parsing is separate from publishing: seattle_messages() and glasgow_messages() return the messages
(testable without a broker); replay() publishes any list of messages, one connection per device.
Data: /work/shared/data (see its README.md), or PLACEWATCH_SIM_DATA_DIR.
"""

from __future__ import annotations

import csv
import os
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core.metrics import f_to_c
from simulators import Noise
from simulators.publisher import DEFAULT_PREFIX, RUN_ID, Message, Publisher, SimClock, readings_topic

SEATTLE_ZONE = "America/Los_Angeles"
SEATTLE_CSV = "seattle-road-weather-2020-02.csv"
GLASGOW_DIR = "glasgow-homes-2023"
GLASGOW_CENTRE = (-4.2518, 55.8609)  # George Square; the study's homes are anonymised
_POINT = re.compile(r"POINT\s*\(\s*(-?[\d.]+)\s+(-?[\d.]+)\s*\)", re.IGNORECASE)


def data_dir() -> Path:
    """Where the shared public data lives (PLACEWATCH_SIM_DATA_DIR, else /work/shared/data)."""
    return Path(os.environ.get("PLACEWATCH_SIM_DATA_DIR", "/work/shared/data"))


def default_seattle_csv() -> Path:
    """The Seattle road weather CSV in the data directory."""
    return data_dir() / SEATTLE_CSV


def default_glasgow_files() -> list[Path]:
    """The Glasgow BL007-*.csv home files in the data directory."""
    return sorted((data_dir() / GLASGOW_DIR / "Smart_Citizen_Data_concat").glob("BL007-*.csv"))


# -- Seattle ------------------------------------------------------------------------------------------


def parse_point(wkt: str) -> tuple[float, float]:
    """WKT `POINT (lon lat)` to (lon, lat); raise ValueError otherwise."""
    m = _POINT.search(wkt)
    if not m:
        raise ValueError(f"not a WKT POINT: {wkt!r}")
    return float(m.group(1)), float(m.group(2))


def parse_seattle_time(text: str) -> datetime:
    """`MM/DD/YYYY hh:mm:ss AM/PM` as naive local wall time."""
    return datetime.strptime(text.strip(), "%m/%d/%Y %I:%M:%S %p")


def local_to_utc(naive: datetime, zone: ZoneInfo, fold: int = 0) -> datetime:
    """Local wall time to UTC. fold picks the first (0) or second (1) of an ambiguous hour;
    a time in the spring-forward gap is read with the offset before the change (02:30 PST = 03:30 PDT)."""
    return naive.replace(tzinfo=zone, fold=fold).astimezone(UTC)


def _ambiguous(naive: datetime, zone: ZoneInfo) -> bool:
    return naive.replace(tzinfo=zone, fold=0).utcoffset() != naive.replace(tzinfo=zone, fold=1).utcoffset()


def seattle_rows(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The CSV rows as read, in file order, duplicates and all."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def seattle_messages(
    path: str | os.PathLike[str] | None = None,
    *,
    limit: int | None = None,
    order: str = "file",
    zone: str = SEATTLE_ZONE,
) -> list[Message]:
    """One message per CSV row (duplicates kept: the store, not the replay, drops them), in file order
    or sorted by time (order='time', stable). Degrees F become degrees C; local time becomes UTC.

    In the hour that repeats when clocks go back, rows of a station are put in the first or second
    pass of that hour by RecordId (the station's sequence number), so duplicates stay together.
    """
    if order not in ("file", "time"):
        raise ValueError("order must be 'file' or 'time'")
    tz = ZoneInfo(zone)
    rows = seattle_rows(path or default_seattle_csv())
    parsed = []
    second_pass: dict[tuple[str, datetime], list[int]] = defaultdict(list)
    for n, row in enumerate(rows, start=2):
        try:
            naive = parse_seattle_time(row["DateTime"])
            record = int(row["RecordId"])
            rst, air = row["RoadSurfaceTemperature"].strip(), row["AirTemperature"].strip()
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path} line {n}: {exc}") from None
        station = row["StationName"].strip()
        if _ambiguous(naive, tz):
            second_pass[(station, naive)].append(record)
        parsed.append((station, naive, record, rst, air))
    # Within a station and an ambiguous local time, the lower RecordId came first (fold 0).
    first_record = {k: min(v) for k, v in second_pass.items()}
    messages = []
    for station, naive, record, rst, air in parsed:
        fold = 0
        key = (station, naive)
        if key in first_record and record != first_record[key]:
            fold = 1
        values: dict[str, object] = {}
        if rst:
            values["road_surface_temperature"] = round(f_to_c(float(rst)), 2)
        if air:
            values["air_temperature"] = round(f_to_c(float(air)), 2)
        if values:
            messages.append(Message(station, local_to_utc(naive, tz, fold), values))
    if order == "time":
        messages.sort(key=lambda m: m.ts)
    return messages[:limit] if limit is not None else messages


def stations(path: str | os.PathLike[str] | None = None) -> dict[str, tuple[float, float]]:
    """Station name -> (lon, lat) from the WKT POINT column."""
    out: dict[str, tuple[float, float]] = {}
    for row in seattle_rows(path or default_seattle_csv()):
        name = row["StationName"].strip()
        if name not in out:
            out[name] = parse_point(row["StationLocation"])
    return out


def registry_for_seattle(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """A registry FeatureCollection with one road_station per Seattle station."""
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {
                "kind": "road_station",
                "id": name,
                "name": _spaced(name),
                "expected_interval_s": 60,
                "source": "City of Seattle open data, Road Weather Information Stations (egc4-d24i)",
            },
        }
        for name, (lon, lat) in sorted(stations(path).items())
    ]
    return {"type": "FeatureCollection", "features": features}


def _spaced(name: str) -> str:
    """AuroraBridge -> Aurora Bridge (for people)."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " / ")


# -- Glasgow ---------------------------------------------------------------------------------------------


def glasgow_device_id(path: str | os.PathLike[str]) -> str:
    """BL007-14.csv -> glasgow-BL007-14."""
    return "glasgow-" + Path(path).stem


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    text = text.strip()
    if not text or text.lower() == "nan":
        return None
    try:
        return float(text)
    except ValueError:
        return None


def glasgow_file_messages(path: str | os.PathLike[str], *, limit: int | None = None) -> list[Message]:
    """One message per row with at least one value: TEMP -> temperature, HUM -> relative_humidity,
    BATT -> battery (omitted when -1, unknown). TIME is ISO 8601 UTC."""
    device = glasgow_device_id(path)
    out: list[Message] = []
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            stamp = (row.get("TIME") or "").strip()
            if not stamp:
                continue
            try:
                ts = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
            except ValueError as exc:
                raise ValueError(f"{path} line {n}: {exc}") from None
            values: dict[str, object] = {}
            temp, hum, batt = _number(row.get("TEMP")), _number(row.get("HUM")), _number(row.get("BATT"))
            if temp is not None:
                values["temperature"] = temp
            if hum is not None:
                values["relative_humidity"] = hum
            if batt is not None and batt >= 0:
                values["battery"] = batt
            if values:
                out.append(Message(device, ts, values))
                if limit is not None and len(out) >= limit:
                    break
    return out


def glasgow_messages(
    paths: Iterable[str | os.PathLike[str]] | None = None, *, limit: int | None = None, order: str = "time"
) -> list[Message]:
    """Messages of every Glasgow file, merged by time (order='time') or file after file ('file')."""
    files = list(paths) if paths is not None else default_glasgow_files()
    messages: list[Message] = []
    for p in files:
        messages.extend(glasgow_file_messages(p))
    if order == "time":
        messages.sort(key=lambda m: m.ts)
    return messages[:limit] if limit is not None else messages


def _glasgow_survey(files: Sequence[Path]) -> dict[str, dict[str, str]]:
    """Per sensor (BL007-14...), the study's survey answers, when the survey file sits beside the data."""
    if not files:
        return {}
    survey = files[0].parent.parent / "SensorID_EPC_Survey_Open_Data.csv"
    if not survey.exists():
        return {}
    with open(survey, newline="", encoding="utf-8") as f:
        return {
            (r.get("ID") or "").strip(): {k.strip(): (v or "").strip() for k, v in r.items() if k}
            for r in csv.DictReader(f)
        }


def registry_for_glasgow(
    paths: Iterable[str | os.PathLike[str]] | None = None, *, patch: str = "glasgow"
) -> dict[str, Any]:
    """A registry FeatureCollection: one home and one home_sensor per Glasgow file.

    The study's homes are anonymised: each home gets an approximate point near Glasgow city centre
    (deterministic, clearly not an address) and the survey's EPC rating, housing type and tenure.
    """
    files = [Path(p) for p in (paths if paths is not None else default_glasgow_files())]
    survey = _glasgow_survey(files)
    features: list[dict[str, Any]] = []
    for p in files:
        sensor_id = glasgow_device_id(p)
        study_id = p.stem
        home_id = f"glasgow-home-{study_id}"
        noise = Noise(study_id, "location")
        lon = GLASGOW_CENTRE[0] + 0.04 * (noise.unit(0) - 0.5)
        lat = GLASGOW_CENTRE[1] + 0.02 * (noise.unit(1) - 0.5)
        point = {"type": "Point", "coordinates": [round(lon, 5), round(lat, 5)]}
        info = survey.get(study_id, {})
        home_props: dict[str, Any] = {
            "kind": "home",
            "id": home_id,
            "address": f"Glasgow household {study_id} (anonymised; location approximate)",
            "patch": patch,
            "source": "University of Glasgow UBDC / Bureau of Investigative Journalism, Smart Citizen Kit, 2023",
        }
        for key, prop in (
            ("Current EPC Rating", "epc_rating"),
            ("Housing Type", "housing_type"),
            ("Tenures", "tenure"),
            ("IMD Quintile", "imd_quintile"),
        ):
            if info.get(key):
                home_props[prop] = info[key]
        features.append({"type": "Feature", "geometry": point, "properties": home_props})
        features.append(
            {
                "type": "Feature",
                "geometry": point,
                "properties": {
                    "kind": "home_sensor",
                    "id": sensor_id,
                    "home": home_id,
                    "room": "unknown",
                    "model": "Smart Citizen Kit",
                    "expected_interval_s": 60,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def shifted(messages: Sequence[Message], start: datetime) -> list[Message]:
    """The same messages moved in time so the earliest is at `start` (to replay old data as if it were now)."""
    if not messages:
        return []
    delta = start - min(m.ts for m in messages)
    return [Message(m.device_id, m.ts + delta, m.values) for m in messages]


# -- publishing ---------------------------------------------------------------------------------------------


def replay(
    messages: Sequence[Message],
    mqtt_url: str,
    *,
    protocol: str = "5",
    speed: float = 0.0,
    prefix: str = DEFAULT_PREFIX,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Publish messages in the order given, one MQTT connection per device (will: offline);
    speed 0 as fast as QoS 1 allows, else `speed` times real time from the first message's ts
    (give time-ordered messages). Returns the number published."""
    publishers: dict[str, Publisher] = {}
    sent = 0
    try:
        for device in dict.fromkeys(m.device_id for m in messages):
            publishers[device] = Publisher(
                mqtt_url, protocol=protocol, client_id=f"pw-replay-{device}-{RUN_ID}", device_id=device, prefix=prefix
            ).connect()
        clock = SimClock(messages[0].ts, speed) if messages else None
        for m in messages:
            if clock is not None and speed > 0 and not clock.wait_until(m.ts, stop):
                break
            if stop is not None and stop.is_set():
                break
            pub = publishers[m.device_id]
            pub.publish(readings_topic(m.device_id, prefix), m.payload())
            sent += 1
            if progress is not None and sent % 5000 == 0:
                progress(sent, len(messages))
        for device, pub in publishers.items():
            if not pub.flush(60):
                raise TimeoutError(f"{device}: {pub.pending} messages not acknowledged within 60 s")
    finally:
        for pub in publishers.values():
            pub.close()
    return sent
