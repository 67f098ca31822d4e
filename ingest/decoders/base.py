"""The decoder interface and the helpers every decoder shares."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

import orjson

from core.metrics import METRICS, check_value, convert
from core.model import Decoded, DecodeError, Reading

MAX_NESTING = 32
# What parsing a device's time may raise: core.timeparse raises ValueError, and OverflowError for
# offsets that push a date past year 1 or 9999.
TIME_ERRORS = (ValueError, OverflowError)


class Decoder(Protocol):
    """Turns one MQTT message on a topic it owns into normalised readings, or raises DecodeError."""

    name: str

    def subscriptions(self) -> list[str]:
        """The MQTT topic filters this decoder needs."""
        ...

    def matches(self, topic: str) -> bool:
        """True when this decoder owns the topic."""
        ...

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> Decoded:
        """Decode one message; received_at is when ingest received it (aware UTC)."""
        ...


class FilteredTopics:
    """Subscriptions and topic matching for a decoder configured with a list of MQTT topic filters."""

    name: str
    topics: list[str]

    def set_topics(self, topics: Sequence[str], example: str) -> None:
        """Keep the non-empty filters; refuse an empty list, naming an example filter."""
        self.topics = [t.strip() for t in topics if t.strip()]
        if not self.topics:
            raise ValueError(f"{self.name} needs at least one topic filter, e.g. {example}")

    def subscriptions(self) -> list[str]:
        """The configured topic filters."""
        return list(self.topics)

    def matches(self, topic: str) -> bool:
        """True for topics under one of the filters."""
        return any(topic_matches(f, topic) for f in self.topics)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic filter matching with + and # (no $share prefix)."""
    f_parts = topic_filter.split("/")
    t_parts = topic.split("/")
    for i, f in enumerate(f_parts):
        if f == "#":
            return True
        if i >= len(t_parts):
            return False
        if f != "+" and f != t_parts[i]:
            return False
    return len(f_parts) == len(t_parts)


def load_json(payload: bytes, *, check_depth: bool = True) -> Any:
    """Parse a JSON payload strictly (UTF-8, no NaN/Infinity), raising DecodeError with a readable reason.

    check_depth refuses nesting deeper than MAX_NESTING; a decoder that never walks into nested values
    may skip it (orjson itself refuses nesting past 1024).
    """
    if not payload:
        raise DecodeError("empty payload")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("payload is not UTF-8 text") from None
        raise DecodeError(f"payload is not valid JSON: {exc}") from None
    if check_depth:
        _check_depth(doc)
    return doc


def _check_depth(doc: Any) -> None:
    stack = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise DecodeError(f"JSON nested deeper than {MAX_NESTING} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def json_kind(value: object) -> str:
    """A JSON value's type as a person reading JSON names it ("null", "a string", "an array"...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def as_number(raw: object) -> object:
    """A numeric string ("24.53", as some vendor decoders send) as a float; anything else unchanged."""
    if isinstance(raw, str) and 0 < len(raw) <= 32:
        try:
            value = float(raw)
        except ValueError:
            return raw
        return value if math.isfinite(value) else raw
    return raw


def reading(
    device_id: str, metric: str, ts: datetime, raw: object, unit: str | None, rejections: list[str]
) -> Reading | None:
    """Validate and convert one value into a Reading; on failure append the reason and return None.

    None values are ignored silently (devices send null for "no value").
    """
    if raw is None:
        return None
    if unit is not None and not isinstance(raw, (str, bool)) and isinstance(raw, (int, float)):
        try:
            metric, raw = convert(metric, float(raw), unit)
        except ValueError as exc:
            rejections.append(str(exc))
            return None
    why = check_value(metric, raw)
    if why is not None:
        rejections.append(why)
        return None
    if METRICS[metric].categories is not None:
        assert isinstance(raw, str)
        return Reading(device_id, metric, ts, None, raw.lower())
    value = float(raw)  # type: ignore[arg-type]
    if not math.isfinite(value):  # pragma: no cover - check_value refuses these
        return None
    return Reading(device_id, metric, ts, value, None)


def decoded(device_id: str | None, readings: Iterable[Reading | None], rejections: list[str], fmt: str) -> Decoded:
    """Assemble a Decoded, dropping the None placeholders."""
    return Decoded(
        device_id=device_id,
        readings=tuple(r for r in readings if r is not None),
        rejections=tuple(rejections),
        format=fmt,
    )
