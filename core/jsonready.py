"""Values as JSON carries them (API bodies, MQTT alerts, stored evidence): every time in the one format of
core.timeparse.utc_z, dataclasses and mappings as objects, tuples as lists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any

from core.timeparse import utc_z


def json_ready(value: object) -> Any:
    """The value with times as utc_z strings, dataclasses and mappings as dicts, tuples and lists as lists."""
    if isinstance(value, datetime):
        return utc_z(value)
    if isinstance(value, (str, int, float)) or value is None:
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_ready(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value
