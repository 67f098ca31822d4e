"""The registry GeoJSON of CONTRACT.md, parsed and checked whole: a bad file is refused with its line."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

KINDS = ("route", "road_station", "home", "home_sensor", "depot")


class RegistryError(ValueError):
    """The file is refused; `line` is the 1-based line of the offending feature (or JSON error)."""

    def __init__(self, reason: str, *, line: int | None = None, feature: int | None = None) -> None:
        self.reason = reason
        self.line = line
        self.feature = feature
        where = []
        if line is not None:
            where.append(f"line {line}")
        if feature is not None:
            where.append(f"feature {feature}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


@dataclass(frozen=True, slots=True)
class DeviceDef:
    """A road station or home sensor."""

    id: str
    kind: str
    geometry: dict[str, Any] | None
    name: str | None = None
    model: str | None = None
    format: str | None = None
    home: str | None = None
    room: str | None = None
    expected_interval_s: int | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True, slots=True)
class RouteDef:
    """A precautionary salting route and the stations that represent it."""

    id: str
    name: str
    priority: int
    treatment_minutes: int
    mobilisation_minutes: int | None
    depot: str | None
    stations: tuple[str, ...]
    geometry: dict[str, Any]
    properties: dict[str, Any] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True, slots=True)
class HomeDef:
    """A home (UPRN or similar id) in a housing officer's patch."""

    id: str
    address: str | None
    patch: str | None
    geometry: dict[str, Any] | None
    outdoor: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True, slots=True)
class DepotDef:
    """Where gritters leave from, with how long crews take to mobilise."""

    id: str
    name: str | None
    mobilisation_minutes: int
    geometry: dict[str, Any] | None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Registry:
    """A parsed registry file."""

    routes: tuple[RouteDef, ...]
    devices: tuple[DeviceDef, ...]
    homes: tuple[HomeDef, ...]
    depots: tuple[DepotDef, ...]

    @property
    def size(self) -> int:
        """Number of features."""
        return len(self.routes) + len(self.devices) + len(self.homes) + len(self.depots)


def parse_registry(text: str) -> Registry:
    """Parse and check a registry FeatureCollection; raise RegistryError naming the line and reason."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise RegistryError("the file must be a GeoJSON FeatureCollection", line=1)
    features = doc.get("features")
    if not isinstance(features, list):
        raise RegistryError("'features' must be an array", line=1)
    lines = _feature_lines(text, len(features))
    routes: list[RouteDef] = []
    devices: list[DeviceDef] = []
    homes: list[HomeDef] = []
    depots: list[DepotDef] = []
    seen: dict[tuple[str, str], int] = {}
    for i, feat in enumerate(features):
        line = lines[i] if i < len(lines) else None
        try:
            item = _feature(feat)
        except RegistryError as exc:
            raise RegistryError(exc.reason, line=line, feature=i + 1) from None
        group = "device" if isinstance(item, DeviceDef) else type(item).__name__
        key = (group, item.id)
        if key in seen:
            raise RegistryError(f"id {item.id!r} appears twice (also feature {seen[key]})", line=line, feature=i + 1)
        seen[key] = i + 1
        item = _with_line(item, line or 0)
        if isinstance(item, RouteDef):
            routes.append(item)
        elif isinstance(item, DeviceDef):
            devices.append(item)
        elif isinstance(item, HomeDef):
            homes.append(item)
        else:
            depots.append(item)
    return Registry(tuple(routes), tuple(devices), tuple(homes), tuple(depots))


def unresolved(reg: Registry, *, stations: set[str], homes: set[str], depots: set[str]) -> RegistryError | None:
    """The first reference that names nothing in the file or in the given existing ids, as an error."""
    st = {d.id for d in reg.devices if d.kind == "road_station"} | stations
    hm = {h.id for h in reg.homes} | homes
    dp = {d.id for d in reg.depots} | depots
    for r in reg.routes:
        for s in r.stations:
            if s not in st:
                return RegistryError(f"route {r.id!r} names station {s!r}, which is not a road_station", line=r.line)
        if r.depot is not None and r.depot not in dp:
            return RegistryError(f"route {r.id!r} names depot {r.depot!r}, which is not a depot", line=r.line)
    for d in reg.devices:
        if d.kind == "home_sensor" and d.home is not None and d.home not in hm:
            return RegistryError(f"home_sensor {d.id!r} names home {d.home!r}, which is not a home", line=d.line)
    return None


def _with_line(item: Any, line: int) -> Any:
    from dataclasses import replace

    return replace(item, line=line)


_FEATURES_KEY = re.compile(r'"features"\s*:\s*\[')


def _feature_lines(text: str, count: int) -> list[int]:
    """Line numbers where each feature starts (best effort: the first top-level 'features' array)."""
    decoder = json.JSONDecoder()
    for m in _FEATURES_KEY.finditer(text):
        pos = m.end()
        starts: list[int] = []
        try:
            while len(starts) < count:
                while pos < len(text) and text[pos] in " \t\r\n,":
                    pos += 1
                starts.append(pos)
                _, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            continue
        return [text.count("\n", 0, s) + 1 for s in starts]
    return []


def _feature(feat: Any) -> RouteDef | DeviceDef | HomeDef | DepotDef:
    if not isinstance(feat, dict) or feat.get("type") != "Feature":
        raise RegistryError("each entry of 'features' must be a GeoJSON Feature")
    props = feat.get("properties")
    if not isinstance(props, dict):
        raise RegistryError("'properties' must be an object")
    kind = props.get("kind")
    if kind not in KINDS:
        raise RegistryError(f"properties.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    fid = _text(props, "id", required=True)
    assert fid is not None
    geom = feat.get("geometry")
    if kind == "route":
        _geometry(geom, ("LineString", "MultiLineString"), required=True)
        stations = props.get("stations", [])
        if not isinstance(stations, list) or not all(isinstance(s, str) and s for s in stations):
            raise RegistryError(f"route {fid!r}: 'stations' must be a list of device ids")
        return RouteDef(
            id=fid,
            name=_text(props, "name") or fid,
            priority=_int(props, "priority", 1, low=1),
            treatment_minutes=_int(props, "treatment_minutes", 180, low=1),
            mobilisation_minutes=_opt_int(props, "mobilisation_minutes", low=0),
            depot=_text(props, "depot"),
            stations=tuple(dict.fromkeys(stations)),
            geometry=geom or {},
            properties=props,
        )
    if kind == "road_station":
        _geometry(geom, ("Point",), required=True)
        return _device(fid, kind, geom, props)
    if kind == "home_sensor":
        _geometry(geom, ("Point",), required=False)
        home = _text(props, "home", required=True)
        return _device(fid, kind, geom, props, home=home)
    if kind == "home":
        _geometry(geom, ("Point", "Polygon", "MultiPolygon"), required=False)
        return HomeDef(
            id=fid,
            address=_text(props, "address"),
            patch=_text(props, "patch"),
            geometry=geom,
            outdoor=_text(props, "outdoor"),
            properties=props,
        )
    _geometry(geom, ("Point",), required=False)
    return DepotDef(
        id=fid,
        name=_text(props, "name"),
        mobilisation_minutes=_int(props, "mobilisation_minutes", 60, low=0),
        geometry=geom,
    )


def _device(fid: str, kind: str, geom: Any, props: dict[str, Any], home: str | None = None) -> DeviceDef:
    return DeviceDef(
        id=fid,
        kind=kind,
        geometry=geom,
        name=_text(props, "name"),
        model=_text(props, "model"),
        format=_text(props, "format"),
        home=home,
        room=_text(props, "room"),
        expected_interval_s=_opt_int(props, "expected_interval_s", low=1),
        properties=props,
    )


def _text(props: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    v = props.get(key)
    if v is None:
        if required:
            raise RegistryError(f"properties.{key} is required")
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and key == "id":
        v = str(v)  # UPRNs are often written as numbers
    if not isinstance(v, str) or not v.strip():
        raise RegistryError(f"properties.{key} must be a non-empty string, got {v!r}")
    return v


def _int(props: dict[str, Any], key: str, default: int, *, low: int) -> int:
    v = _opt_int(props, key, low=low)
    return default if v is None else v


def _opt_int(props: dict[str, Any], key: str, *, low: int) -> int | None:
    v = props.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v):
        raise RegistryError(f"properties.{key} must be a whole number, got {v!r}")
    if v < low:
        raise RegistryError(f"properties.{key} must be at least {low}, got {v!r}")
    return int(v)


def _geometry(geom: Any, allowed: tuple[str, ...], *, required: bool) -> None:
    if geom is None:
        if required:
            raise RegistryError(f"geometry is required ({' or '.join(allowed)})")
        return
    if not isinstance(geom, dict) or geom.get("type") not in allowed:
        got = geom.get("type") if isinstance(geom, dict) else type(geom).__name__
        raise RegistryError(f"geometry must be {' or '.join(allowed)}, got {got!r}")
    coords = geom.get("coordinates")
    t = geom["type"]
    if t == "Point":
        _position(coords)
    elif t == "LineString":
        _line(coords)
    elif t == "MultiLineString":
        if not isinstance(coords, list) or not coords:
            raise RegistryError("MultiLineString needs at least one line")
        for ln in coords:
            _line(ln)
    elif t in ("Polygon", "MultiPolygon") and not isinstance(coords, list):
        raise RegistryError(f"{t} coordinates must be an array")


def _line(coords: Any) -> None:
    if not isinstance(coords, list) or len(coords) < 2:
        raise RegistryError("a LineString needs at least two positions")
    for p in coords:
        _position(p)


def _position(p: Any) -> None:
    if (
        not isinstance(p, list)
        or len(p) < 2
        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in p[:2])
    ):
        raise RegistryError(f"a position must be [longitude, latitude], got {p!r}")
    lon, lat = p[0], p[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise RegistryError(f"position [{lon}, {lat}] is outside longitude -180..180 / latitude -90..90")


# -- features far from the rest (swapped coordinates, a typo in a degree) ---------------------------------

# Great Britain, Northern Ireland, the islands and a margin: a council registry inside it with one feature
# outside it has a mistake in that feature.
UK_BOUNDS = (-11.0, 49.0, 3.0, 61.5)  # west, south, east, north (degrees)
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class FarFeature:
    """A feature that lies far from the rest of the registry: a warning, never a refusal."""

    kind: str
    id: str
    line: int
    position: tuple[float, float]  # the offending [longitude, latitude]
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}, " if self.line else ""
        return f"{where}{self.kind} {self.id!r}: {self.reason}"


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (longitude, latitude) positions, km."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _positions(geometry: dict[str, Any] | None) -> list[tuple[float, float]]:
    """Every [longitude, latitude] of a geometry (outer and inner rings alike)."""
    if not geometry:
        return []
    out: list[tuple[float, float]] = []

    def walk(c: Any) -> None:
        if isinstance(c, list) and len(c) >= 2 and all(isinstance(x, (int, float)) for x in c[:2]):
            out.append((float(c[0]), float(c[1])))
        elif isinstance(c, list):
            for part in c:
                walk(part)

    walk(geometry.get("coordinates"))
    return out


def _inside(p: tuple[float, float], bounds: tuple[float, float, float, float]) -> bool:
    west, south, east, north = bounds
    return west <= p[0] <= east and south <= p[1] <= north


def _median_without(values: list[float], rank: int) -> float:
    """The median of sorted `values` without the element at `rank`."""
    n = len(values) - 1

    def at(j: int) -> float:
        return values[j if j < rank else j + 1]

    return at(n // 2) if n % 2 else (at(n // 2 - 1) + at(n // 2)) / 2


def far_features(
    reg: Registry, *, max_km: float = 100.0, bounds: tuple[float, float, float, float] | None = UK_BOUNDS
) -> list[FarFeature]:
    """Features with a position more than max_km from the median position of the other features, or outside
    `bounds` when every other feature is inside them (swapped latitude and longitude, a lost minus sign).

    Needs at least three placed features to judge; a registry spread wider than max_km warns about its edges,
    so set max_km to the width of the council's area."""
    items: list[tuple[str, str, int, list[tuple[float, float]]]] = []
    for r in reg.routes:
        items.append(("route", r.id, r.line, _positions(r.geometry)))
    for d in reg.devices:
        items.append((d.kind, d.id, d.line, _positions(d.geometry)))
    for h in reg.homes:
        items.append(("home", h.id, h.line, _positions(h.geometry)))
    for dp in reg.depots:
        items.append(("depot", dp.id, dp.line, _positions(dp.geometry)))
    placed = [(k, i, ln, ps) for k, i, ln, ps in items if ps]
    if len(placed) < 3:
        return []
    # Each feature stands at the median of its own positions, so one bad vertex cannot hide in a long route.
    centres = [(_median([p[0] for p in ps]), _median([p[1] for p in ps])) for _, _, _, ps in placed]
    lon_order = sorted(range(len(centres)), key=lambda i: centres[i][0])
    lat_order = sorted(range(len(centres)), key=lambda i: centres[i][1])
    lons = [centres[i][0] for i in lon_order]
    lats = [centres[i][1] for i in lat_order]
    lon_rank = {i: r for r, i in enumerate(lon_order)}
    lat_rank = {i: r for r, i in enumerate(lat_order)}
    outside = [bounds is not None and not all(_inside(p, bounds) for p in ps) for _, _, _, ps in placed]
    n_outside = sum(outside)
    out: list[FarFeature] = []
    for i, (kind, fid, line, ps) in enumerate(placed):
        others = (_median_without(lons, lon_rank[i]), _median_without(lats, lat_rank[i]))
        worst = max(ps, key=lambda p: distance_km(p, others))
        km = distance_km(worst, others)
        if km > max_km:
            reason = (
                f"position [{worst[0]:g}, {worst[1]:g}] is {km:,.0f} km from the median of the other features "
                f"([{others[0]:.4f}, {others[1]:.4f}]; the limit is {max_km:g} km)"
            )
            swapped = (worst[1], worst[0])
            if distance_km(swapped, others) <= max_km:
                reason += f": latitude and longitude look swapped (did you mean [{worst[1]:g}, {worst[0]:g}]?)"
            out.append(FarFeature(kind, fid, line, worst, reason))
        elif outside[i] and n_outside == 1 and bounds is not None:
            bad = next(p for p in ps if not _inside(p, bounds))
            out.append(
                FarFeature(
                    kind,
                    fid,
                    line,
                    bad,
                    f"position [{bad[0]:g}, {bad[1]:g}] is outside the UK (longitude {bounds[0]:g} to {bounds[2]:g}, "
                    f"latitude {bounds[1]:g} to {bounds[3]:g}) while every other feature is inside",
                )
            )
    return out


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
