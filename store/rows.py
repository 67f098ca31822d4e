"""Typed rows: each query names the frozen dataclass its rows are made into (psycopg's class_row), so callers read
attributes mypy knows rather than dictionary keys.

core's case rules (core.cases, core.season) read a case, a user or a notice as a Mapping[str, Any]; the rows they
are handed subclass MappingRow, which is a frozen dataclass that can also be read as a read-only mapping of its
fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from functools import cache
from typing import Any, TypeVar

import psycopg
from psycopg.rows import RowMaker, class_row

T = TypeVar("T")


class MappingRow(Mapping[str, Any]):
    """Base of a frozen dataclass row that core's rules may also read as a mapping of its fields (row["level"]);
    read-only, as the dataclass is."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if key not in _names(type(self)):
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_names(type(self)))

    def __len__(self) -> int:
        return len(_names(type(self)))


@cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def typed(conn: psycopg.Connection, row: type[T]) -> psycopg.Cursor[T]:
    """A cursor whose rows are made into `row` (a dataclass whose fields are the query's columns, by name)."""
    return conn.cursor(row_factory=class_row(row))


def typed_with(
    conn: psycopg.Connection, row: type[T], part: str, part_row: type[Any], prefix: str
) -> psycopg.Cursor[T]:
    """A cursor whose rows are made into `row`, except the columns named prefix + a field of `part_row`, which make
    the `part_row` given to `row` as its field `part` (None when the column prefix + "id" is NULL: an outer join
    that found none). For one row with another inside it: a home and its open case, a route and its decision."""

    def factory(cursor: psycopg.Cursor[Any]) -> RowMaker[T]:
        names = [c.name for c in cursor.description or ()]
        own = [(i, n) for i, n in enumerate(names) if not n.startswith(prefix)]
        inner = [(i, n.removeprefix(prefix)) for i, n in enumerate(names) if n.startswith(prefix)]
        key = names.index(prefix + "id")

        def make(values: Sequence[Any]) -> T:
            inside = None if values[key] is None else part_row(**{n: values[i] for i, n in inner})
            return row(**{n: values[i] for i, n in own}, **{part: inside})

        return make

    return conn.cursor(row_factory=factory)
