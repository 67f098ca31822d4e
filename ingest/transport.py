"""Where ingest's messages come from, besides the MQTT broker it talks to by default.

The ingest pipeline (decode -> bounded queue -> batch -> COPY -> acknowledge) is the same whatever
the transport: a transport hands each message to the service's on_message as a `Delivered` (the
topic the decoders expect, the payload, an id to acknowledge it by) and acknowledges the ids the
service gives back once what they carried is committed. The MQTT path is paho's client itself
(ingest/service.py); JetStream is ingest/jetstream.py.

NATS's MQTT listener turns an MQTT topic into a NATS subject (nats-server's
mqttToNATSSubjectConversion): '/' between two levels becomes '.', an empty level (a '/' at the start,
at the end or next to another '/') becomes the token '/', and since nats-server 2.10 a '.' inside a
level becomes '//'. A topic with a space (or, before 2.10, a '.') is refused by the server: the device
is disconnected and its message never reaches a stream. The functions here map both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Delivered:
    """One message from a transport, in the shape ingest's on_message reads (paho's MQTTMessage has the same)."""

    mid: int
    qos: int
    topic: str
    payload: bytes


class Transport(Protocol):
    """A source of messages that are acknowledged only after they are committed."""

    def start(self) -> None:
        """Connect (retrying in the background) and start handing messages to the service."""

    def ack(self, mids: list[int]) -> None:
        """Acknowledge committed messages by the ids they were delivered with (from the writer thread)."""

    def stop(self) -> None:
        """Stop taking messages; what is not acknowledged is delivered again, to this or another worker."""


def topic_to_subject(topic: str) -> str:
    """The NATS subject nats-server's MQTT listener publishes an MQTT topic on (ValueError if it refuses it)."""
    if " " in topic:
        raise ValueError(f"NATS refuses MQTT topics with a space: {topic!r}")
    return ".".join("/" if level == "" else level.replace(".", "//") for level in topic.split("/"))


def subject_to_topic(subject: str) -> str:
    """The MQTT topic a device published on, from the NATS subject it arrived on (the inverse of the above)."""
    return "/".join("" if part == "/" else part.replace("//", ".") for part in subject.split("."))


def filter_to_subject(topic_filter: str) -> str:
    """An MQTT topic filter as a NATS subject filter ('+' -> '*', '#' -> '>')."""
    out = []
    for level in topic_filter.split("/"):
        if level == "+":
            out.append("*")
        elif level == "#":
            out.append(">")
        else:
            out.append("/" if level == "" else level.replace(".", "//"))
    return ".".join(out)
