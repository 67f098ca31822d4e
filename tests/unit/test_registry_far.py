"""The registry's warning about features far from the rest: swapped coordinates, a point outside the UK."""

from __future__ import annotations

from core.registry import distance_km, far_features, parse_registry
from tests.helpers import collection, home, route, station


def _birmingham(*extra):
    return parse_registry(
        collection(
            station("rws-a", -1.916, 52.471),
            station("rws-b", -1.956, 52.471),
            station("rws-c", -2.005, 52.378),
            route("P1", ["rws-a", "rws-b"]),
            *extra,
        )
    )


def test_a_station_with_latitude_and_longitude_swapped_is_named_with_its_line_and_the_fix():
    reg = _birmingham(station("rws-swapped", 52.564, -1.856))
    warnings = far_features(reg)
    assert [(w.kind, w.id) for w in warnings] == [("road_station", "rws-swapped")]
    w = warnings[0]
    assert w.line > 1 and f"line {w.line}" in str(w)
    assert "latitude and longitude look swapped" in w.reason and "[-1.856, 52.564]" in w.reason
    assert "km from the median of the other features" in w.reason


def test_a_registry_that_is_all_in_one_place_warns_about_nothing():
    assert far_features(_birmingham(station("rws-d", -1.856, 52.564))) == []


def test_one_bad_vertex_in_a_long_route_is_found():
    bad = route("P9", ["rws-a"])
    bad["geometry"]["coordinates"] = [[-1.9, 52.48], [-1.85, 52.49], [-18.5, 52.49]]  # a lost decimal point
    warnings = far_features(_birmingham(bad))
    assert [w.id for w in warnings] == ["P9"]
    assert warnings[0].position == (-18.5, 52.49)
    assert "swapped" not in warnings[0].reason


def test_a_point_outside_the_uk_is_named_when_everything_else_is_inside_even_if_close():
    # Just over the Channel, 60 km from the others: within a wide limit, but outside the UK's bounds.
    reg = parse_registry(
        collection(
            station("a", 1.2, 51.1), station("b", 1.0, 51.2), station("c", 1.3, 51.0), station("calais", 1.9, 50.9)
        )
    )
    assert far_features(reg, max_km=200) == []  # inside the default bounds, which reach 3 degrees east
    w = far_features(reg, max_km=200, bounds=(-11.0, 49.0, 1.5, 61.5))
    assert [x.id for x in w] == ["calais"] and "outside the UK" in w[0].reason


def test_a_registry_elsewhere_in_the_world_is_not_judged_by_uk_bounds():
    seattle = parse_registry(
        collection(station("s1", -122.3, 47.6), station("s2", -122.35, 47.62), station("s3", -122.28, 47.58))
    )
    assert far_features(seattle) == []


def test_the_limit_is_configurable_and_too_few_features_are_not_judged():
    reg = _birmingham(home("h-far", "north"))  # tests.helpers.home stands at -1.9, 52.47: near
    assert far_features(reg, max_km=0.5) != []  # a tiny limit flags the edges
    two = parse_registry(collection(station("a", -1.9, 52.4), station("b", 52.4, -1.9)))
    assert far_features(two) == []


def test_distance_is_great_circle():
    # Birmingham to London, about 163 km.
    assert 155 < distance_km((-1.8904, 52.4862), (-0.1276, 51.5072)) < 170
