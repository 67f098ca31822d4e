"""Response models made from the store's rows (frozen dataclasses), so a row is defined once, in store/: a model
has the row's fields with their types, defaults and descriptions (a field's metadata["description"]), a nested
row as its own model and a tuple as a JSON array, and writes every time through core.timeparse.utc_z."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from datetime import datetime
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, Field, PlainSerializer, create_model

from core.timeparse import utc_z

# A time in a response: RFC 3339 in UTC with a Z, as core.timeparse.utc_z writes every time.
UtcTime = Annotated[datetime, PlainSerializer(utc_z, return_type=str, when_used="json")]


class RowModels:
    """The response models of row types, each named as the API's schema names it (else by its class)."""

    def __init__(self, names: Mapping[type, str]) -> None:
        self._names = dict(names)
        self._models: dict[type, type[BaseModel]] = {}

    def __getitem__(self, row: type) -> type[BaseModel]:
        model = self._models.get(row)
        if model is None:
            hints = get_type_hints(row)
            defs: dict[str, Any] = {}
            for f in fields(row):
                given: dict[str, Any] = {}
                if f.default is not MISSING:
                    given["default"] = f.default
                elif f.default_factory is not MISSING:
                    given["default_factory"] = f.default_factory
                defs[f.name] = (self._type(hints[f.name]), Field(description=f.metadata.get("description"), **given))
            model = create_model(self._names.get(row, row.__name__), __doc__=row.__doc__, **defs)
            self._models[row] = model
        return model

    def _type(self, hint: Any) -> Any:
        """The type a response field has for a row field's type."""
        if hint is datetime:
            return UtcTime
        if isinstance(hint, type) and is_dataclass(hint):
            return self[hint]
        origin, args = get_origin(hint), get_args(hint)
        if origin in (Union, types.UnionType):
            return Union[tuple(self._type(a) for a in args)]  # noqa: UP007 (built from a tuple of types)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return list[self._type(args[0])]  # type: ignore[misc]
        return hint
