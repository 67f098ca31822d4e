"""`placewatch history import FILE --format cotrip|csv [--mapping FILE]`: station history by COPY.

Reads the file as a stream (bounded memory whatever its size), turns each row into readings with core.history
and loads them with store.history in one transaction. A file that cannot be read, lacks columns or has a bad
mapping is refused whole, naming the line; bad rows are counted and listed, and the rest is loaded.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import gzip
import io
import json
import os
import re
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from core.history import COTRIP, FileRefused, Mapping, MappingError, RowReader, parse_mapping, parse_station_table
from placewatch.settings import Settings

MAPPINGS_DIR = Path(__file__).resolve().parent.parent / "registry" / "mappings"


def register(sub: Any) -> None:
    """Add the `history` command group."""
    grp = sub.add_parser("history", help="station history files").add_subparsers(dest="history_command", required=True)
    imp = grp.add_parser(
        "import",
        help="load a station history file by COPY (idempotent; bad rows listed, a bad file refused whole)",
        description="Load years of station history into the readings store (not through MQTT). "
        "Stations the registry does not know become road stations at the position the file gives.",
    )
    imp.add_argument("file")
    imp.add_argument("--format", required=True, choices=["cotrip", "csv"], help="cotrip: the CoTrip (Colorado) layout")
    imp.add_argument("--mapping", help="csv: YAML or JSON mapping of columns, zone and units (registry/mappings/)")
    imp.add_argument(
        "--stations",
        help="CSV of stations (id, name, lat, lon, elevation in m) for new stations' names, positions and "
        "elevations; with --format cotrip, stations.csv beside the file is used when present",
    )
    imp.add_argument("--dry-run", action="store_true", help="check and count everything, write nothing")
    imp.add_argument("--bad-rows", metavar="FILE", help="write every bad row and dropped value (line, reason) here")
    imp.add_argument("--show", type=int, default=20, metavar="N", help="bad rows listed on screen (default 20)")
    imp.set_defaults(fn=cmd_history_import)


def cmd_history_import(settings: Settings, args: argparse.Namespace) -> int:
    """Load one history file; exit 0 when loaded (bad rows listed), 1 when refused, 2 when unusable."""
    import psycopg

    from store.db import connect
    from store.history import import_history

    path = Path(args.file)
    try:
        mapping = _mapping(args)
    except (OSError, MappingError, ValueError) as exc:
        print(f"placewatch history import: {exc}", file=sys.stderr)
        return 2
    stations: dict[str, Any] = {}
    table = Path(args.stations) if args.stations else None
    if table is None and args.format == "cotrip" and (path.parent / "stations.csv").is_file():
        table = path.parent / "stations.csv"
    try:
        raw = path.open("rb")
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 2
    issues = _Issues(Path(args.bad_rows) if args.bad_rows else None, args.show)
    started = time.monotonic()
    try:
        if table is not None:
            stations = _station_table(table, mapping.station_prefix)
            print(f"stations: names, positions and elevations of new stations from {table}", file=sys.stderr)
        with raw, connect(settings.dsn(), autocommit=True) as conn:
            rows = _rows(raw, path, mapping, settings)
            stats = import_history(
                conn,
                rows,
                source=path.name,
                stations=stations,
                dry_run=args.dry_run,
                on_issue=issues.add,
            )
    except FileRefused as exc:
        issues.close()
        print(f"{getattr(exc, 'file', path)}: refused, nothing was loaded: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        issues.close()
        print(f"{path}: cannot read: {exc}; nothing was loaded", file=sys.stderr)
        return 2
    except psycopg.Error as exc:  # the load is one transaction: it was rolled back whole
        issues.close()
        print(f"{path}: nothing was loaded (database error): {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        issues.close()
        print(f"\n{path}: interrupted, nothing was loaded", file=sys.stderr)
        return 130
    issues.close()
    seconds = time.monotonic() - started
    _report(path, stats, issues, seconds)
    return 0


def _mapping(args: argparse.Namespace) -> Mapping:
    if args.format == "cotrip":
        if args.mapping:
            raise ValueError("--mapping goes with --format csv (cotrip has its own layout)")
        return parse_mapping(COTRIP)
    if not args.mapping:
        raise ValueError(f"--format csv needs --mapping FILE (examples in {MAPPINGS_DIR})")
    mpath = Path(args.mapping)
    text = mpath.read_text(encoding="utf-8")
    try:
        if mpath.suffix.lower() == ".json":
            doc = json.loads(text)
        else:
            import yaml

            doc = yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise MappingError(f"mapping {mpath}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
    except Exception as exc:  # yaml.YAMLError, imported lazily
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise MappingError(f"mapping {mpath}: {where}not valid YAML: {getattr(exc, 'problem', exc)}") from None
    try:
        return parse_mapping(doc)
    except MappingError as exc:
        raise MappingError(f"mapping {mpath}: {exc}") from None


def _station_table(path: Path, prefix: str) -> dict[str, Any]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise _Refused(path, FileRefused("the stations table is empty", line=1))
    try:
        return parse_station_table(rows[0], rows[1:], prefix=prefix)
    except FileRefused as exc:
        raise _Refused(path, exc) from None


class _Refused(FileRefused):
    """A refusal of another file than the one loaded (the stations table)."""

    def __init__(self, path: Path, exc: FileRefused) -> None:
        super().__init__(exc.reason, line=exc.line)
        self.file = path


def _rows(raw: io.BufferedReader, path: Path, mapping: Mapping, settings: Settings) -> Iterator[tuple[int, Any]]:
    """(line, Row or reason) for each data row, with a progress display on stderr. A .gz file is read through
    gzip as it streams."""
    data: Any = gzip.GzipFile(fileobj=raw, mode="rb") if path.suffix.lower() == ".gz" else raw
    encoding = codecs.lookup(mapping.encoding).name
    if encoding.startswith(("utf-16", "utf-32")):  # not line-splittable as bytes: decoded as a stream
        lines: Iterator[str] = io.TextIOWrapper(data, encoding=encoding, newline="")
    else:
        lines = _decoded(data, "utf-8-sig" if encoding == "utf-8" else encoding, mapping)
    reader = csv.reader(lines, delimiter=mapping.delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise FileRefused("the file is empty: the first line must be a header naming the columns", line=1) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FileRefused(_why(exc, mapping), line=1) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise FileRefused(f"not a readable gzip file: {exc}", line=1) from None
    now = datetime.now(UTC)
    rr = RowReader(
        mapping,
        header,
        now=now,
        max_future=timedelta(minutes=settings.max_future_minutes),
        earliest=settings.earliest_reading,
    )
    progress = _Progress(os.fstat(raw.fileno()).st_size, sys.stderr)
    parse = rr.parse
    line = reader.line_num
    n = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except (UnicodeDecodeError, csv.Error) as exc:
            raise FileRefused(_why(exc, mapping), line=line + 1) from None
        except (OSError, EOFError, zlib.error) as exc:  # a damaged or cut-short .gz
            raise FileRefused(f"the gzip stream breaks off: {exc}", line=line + 1) from None
        start, line = line + 1, reader.line_num
        yield start, parse(fields)
        n += 1
        if n % 4096 == 0:
            progress.update(raw.tell(), n)
    progress.done(n)


def _decoded(raw: Any, encoding: str, mapping: Mapping) -> Iterator[str]:
    """The file's lines decoded one by one, so a byte that is not text is refused naming its own line."""
    for n, line in enumerate(raw, start=1):
        try:
            yield line.decode(encoding if n == 1 else encoding.removesuffix("-sig"))
        except UnicodeDecodeError as exc:
            raise FileRefused(_why(exc, mapping), line=n) from None


def _why(exc: Exception, mapping: Mapping) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not {mapping.encoding} text ({exc.reason}); set encoding in the mapping (for example cp1252)"
    return f"not readable as CSV: {exc}"


class _Progress:
    """A bar on a terminal; on anything else (a log, a pipe) a plain line every 10 seconds."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total = max(total, 1)
        self.out = out
        self.tty = out.isatty()
        self.started = self.last = time.monotonic()
        self.shown = False

    def update(self, done: int, rows: int) -> None:
        now = time.monotonic()
        if now - self.last < (0.2 if self.tty else 10.0):
            return
        self.last = now
        share = min(done / self.total, 1.0)
        rate = rows / max(now - self.started, 1e-9)
        if self.tty:
            bar = "#" * int(share * 30)
            self.out.write(f"\r[{bar:<30}] {share:4.0%}  {rows:,} rows  {rate:,.0f} rows/s ")
            self.shown = True
        else:
            self.out.write(f"history import: {share:.0%} read, {rows:,} rows, {rate:,.0f} rows/s\n")
        self.out.flush()

    def done(self, rows: int) -> None:
        if self.shown:
            self.out.write(f"\r[{'#' * 30}] 100%  {rows:,} rows, writing...\n")
            self.out.flush()


class _Issues:
    """Bad rows and dropped values: the first few kept for the screen, all written to --bad-rows, grouped."""

    def __init__(self, path: Path | None, show: int) -> None:
        self.show = max(show, 0)
        self.first: list[tuple[int, str]] = []
        self.kinds: Counter[str] = Counter()
        self.file = path.open("w", encoding="utf-8", newline="") if path else None
        self.writer = csv.writer(self.file) if self.file else None
        self.path = path
        if self.writer:
            self.writer.writerow(["line", "what", "reason"])

    def add(self, line: int, reason: str, whole: bool) -> None:
        if len(self.first) < self.show:
            self.first.append((line, reason if whole else f"value not loaded: {reason}"))
        self.kinds[("row: " if whole else "value: ") + _NUMBER.sub("#", reason)] += 1
        if self.writer:
            self.writer.writerow([line, "row" if whole else "value", reason])

    def close(self) -> None:
        if self.file:
            self.file.close()
            self.file = None


_NUMBER = re.compile(r"-?\d+(?:[.:-]\d+)*")


def _report(path: Path, stats: Any, issues: _Issues, seconds: float) -> None:
    rate = stats.rows / seconds if seconds > 0 else 0.0
    head = "dry run, nothing written: would load" if stats.dry_run else "loaded"
    span = stats.span()
    when = f"; {span[0]:%Y-%m-%d %H:%M} to {span[1]:%Y-%m-%d %H:%M} UTC" if span else ""
    print(
        f"{path}: {head} {stats.rows:,} rows in {seconds:.1f} s ({rate:,.0f} rows/s): "
        f"{stats.readings:,} readings, {stats.new:,} new, {stats.duplicates:,} already stored or repeated"
        f"{when}"
    )
    known = len(stats.stations - set(stats.registered))
    new = ", ".join(stats.registered[:10]) + (", ..." if len(stats.registered) > 10 else "")
    print(
        f"  stations: {len(stats.stations)} with readings, {known} of them already known; "
        f"{len(stats.registered)} new road stations {'would be ' if stats.dry_run else ''}registered"
        f"{f' ({new})' if new else ''}"
    )
    if stats.metrics:
        print("  readings: " + ", ".join(f"{m} {n:,}" for m, n in sorted(stats.metrics.items())))
    print(
        f"  bad rows (not loaded): {stats.bad_rows:,}; values not loaded: {stats.bad_values:,}; "
        f"rows with no value: {stats.empty_rows:,}"
    )
    if stats.differing:
        print(
            f"  {stats.differing:,} readings of the file were stored already with another value (or are twice in "
            "the file with two values); the stored values stay. For example:"
        )
        for example in stats.differing_examples:
            print(f"    {example}")
    if issues.kinds:
        for kind, n in issues.kinds.most_common(8):
            print(f"    {n:>8,}  {kind}")
    if issues.first:
        total = stats.bad_rows + stats.bad_values
        print(f"  the first {len(issues.first)} of {total:,}:")
        for line, reason in issues.first:
            print(f"    line {line}: {reason}")
    if issues.path:
        print(f"  every bad row and value: {issues.path}")
