"""Typed rows: each query names the frozen dataclass its rows are made into (as psycopg's class_row does), so
callers read attributes mypy knows rather than dictionary keys.

A query that selects the row's fields in their order has its rows made positionally, which costs less than
class_row's keyword arguments (about 30 % of a frozen row's making); any other is made by name, as class_row does.

core's case rules (core.cases, core.season) read a case, a user or a notice as a Mapping[str, Any]; the rows they
are handed subclass MappingRow, which is a frozen dataclass that can also be read as a read-only mapping of its
fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from functools import cache
from typing import Any, TypeVar, cast

import psycopg
from psycopg.rows import RowMaker

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
def _positional(cls: type) -> tuple[str, ...] | None:
    """The fields a row type takes positionally, in order (None: it takes keywords only)."""
    if hasattr(cls, "_fields"):
        return _names(cls)
    return None if any(f.kw_only or not f.init for f in fields(cls)) else _names(cls)


@cache
def _names(cls: type) -> tuple[str, ...]:
    """The fields of a row type in order: a dataclass's, or a named tuple's."""
    named: tuple[str, ...] | None = getattr(cls, "_fields", None)
    return named if named is not None else tuple(f.name for f in fields(cls))


def typed(conn: psycopg.Connection, row: type[T], *, binary: bool = False) -> psycopg.Cursor[T]:
    """A cursor whose rows are made into `row`: a dataclass (or, for a read of many thousands of rows, a named
    tuple) whose fields are the query's columns, by name (those the query leaves out need defaults). With
    `binary`, results come in PostgreSQL's binary format: for thousands of rows of times and numbers, cheaper to
    read than their text."""

    def factory(cursor: psycopg.Cursor[Any]) -> RowMaker[T]:
        names = tuple(c.name for c in cursor.description or ())
        order = _positional(cast(type, row))
        if order is not None and order[: len(names)] == names:  # the fields in order: made positionally

            def positional(values: Sequence[Any]) -> T:
                return row(*values)

            return positional

        def by_name(values: Sequence[Any]) -> T:
            return row(**dict(zip(names, values, strict=True)))

        return by_name

    return conn.cursor(row_factory=factory, binary=binary)


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
