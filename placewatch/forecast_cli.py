"""`placewatch forecast load FILE`: road forecasts from a JSON file, the same document as
PUT /api/v1/gritting/forecast (see ForecastLoad in the OpenAPI schema)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from placewatch.settings import Settings


def register(subparsers: Any) -> None:
    """Add `forecast load FILE` to the `placewatch` command line."""
    fc = subparsers.add_parser("forecast", help="road weather forecasts for gritting decisions")
    sub = fc.add_subparsers(dest="forecast_command", required=True)
    load = sub.add_parser("load", help="load a forecast JSON file (for routes or whole forecast domains)")
    load.add_argument(
        "file", help='JSON: {"issued_at": ..., "source": ..., "forecasts": [{"route_ids" or "domain", ...}]}'
    )
    load.set_defaults(fn=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Validate and store the file's forecasts, all or nothing; the scheduler re-evaluates their routes."""
    from pydantic import ValidationError

    from api.routers.gritting import ForecastLoad, forecast_inputs
    from placewatch.cli import read_text_or_say
    from store import gritting as store
    from store.db import connect

    path = Path(args.file)
    text = read_text_or_say(path)
    if text is None:
        return 2
    try:
        load = ForecastLoad.model_validate_json(text)
        inputs = forecast_inputs(load)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors())
        print(f"{path}: refused: {problems}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"{path}: refused: {exc}", file=sys.stderr)
        return 1
    try:
        with connect(settings.dsn()) as conn:
            stored = store.load_forecasts(conn, inputs, loaded_by="cli")
    except store.UnknownRoutes as exc:
        print(f"{path}: refused: {exc}", file=sys.stderr)
        return 1
    routes = sorted({r for f in stored for r in f.routes})
    print(f"{path}: {len(stored)} forecast(s) loaded for {len(routes)} route(s): {', '.join(routes)}")
    return 0
