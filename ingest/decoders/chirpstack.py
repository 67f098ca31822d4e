"""ChirpStack v4 MQTT integration events: application/{application id}/device/{DevEUI}/event/{up|status}.

Device id: deviceInfo.devEui in lower-case hex, as ChirpStack sends it (it must agree with the topic).
Time: `time` (RFC 3339 with a +00:00 offset), else the time ingest received the message.
`up`: values from `object` when the device profile has a codec, else from `data` (base64) through the
built-in codec configured for the device (DevEUI or name) or its application (id or name); see
codecs.py for the key mapping. `status`: batteryLevel (percent) as battery, unless the device is on
external power or cannot measure it. Other events (join, ack, txack, log, location, integration) on
subscribed topics are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from core.model import Decoded, DecodeError
from core.timeparse import parse_rfc3339

from .base import FilteredTopics, json_kind, load_json, reading
from .codecs import CodecTable, uplink_decoded

DEFAULT_TOPICS = ("application/+/device/+/event/up", "application/+/device/+/event/status")


class ChirpStackDecoder(FilteredTopics):
    """Uplink and status events from ChirpStack v4."""

    name = "chirpstack"

    def __init__(
        self,
        topics: Sequence[str] = DEFAULT_TOPICS,
        *,
        codecs: Mapping[str, str] | None = None,
        app_codecs: Mapping[str, str] | None = None,
    ) -> None:
        self.set_topics(topics, "application/+/device/+/event/up")
        self.codecs = CodecTable(codecs, app_codecs)

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> Decoded:
        """Decode an `up` or `status` event; other event types yield nothing."""
        parts = topic.split("/")
        topic_app = topic_eui = None
        if len(parts) == 6 and parts[0] == "application" and parts[2] == "device" and parts[4] == "event":
            topic_app, topic_eui = parts[1], parts[3].lower()
        kind = parts[-1]
        if kind not in ("up", "status"):
            return Decoded(device_id=None, format=self.name, meta={"ignored": f"{kind} event"})
        doc = load_json(payload)
        if not isinstance(doc, dict):
            raise DecodeError(f"{kind} event must be a JSON object, not {json_kind(doc)}")
        info = doc.get("deviceInfo")
        info = info if isinstance(info, dict) else {}
        dev_eui = info.get("devEui")
        if dev_eui is not None and not isinstance(dev_eui, str):
            raise DecodeError(f"deviceInfo.devEui must be a string, not {json_kind(dev_eui)}")
        if dev_eui is None:
            dev_eui = topic_eui
        if not isinstance(dev_eui, str) or not dev_eui:
            raise DecodeError("event has no deviceInfo.devEui and the topic names no device")
        device_id = dev_eui.lower()
        if topic_eui is not None and device_id != topic_eui:
            raise DecodeError(f"payload names device {device_id!r} but the topic names {topic_eui!r}")
        ts = self._time(doc, received_at)
        meta = {
            k: v
            for k, v in (("application", info.get("applicationName")), ("device_name", info.get("deviceName")))
            if isinstance(v, str) and v
        }
        if kind == "status":
            return self._status(device_id, doc, ts, meta)
        codec = self.codecs.codec_for(
            (device_id, info.get("deviceName")), (info.get("applicationId"), topic_app, info.get("applicationName"))
        )
        return uplink_decoded(
            fmt=self.name,
            device_id=device_id,
            ts=ts,
            decoded_payload=doc.get("object"),
            data=doc.get("data"),
            f_port=doc.get("fPort"),
            codec=codec,
            meta=meta,
        )

    def _status(self, device_id: str, doc: dict[str, Any], ts: datetime, meta: dict[str, str]) -> Decoded:
        if doc.get("externalPowerSource") is True or doc.get("batteryLevelUnavailable") is True:
            meta["note"] = "no battery level: external power, or the device cannot measure it"
            return Decoded(device_id=device_id, format=self.name, meta=meta)
        rejections: list[str] = []
        r = reading(device_id, "battery", ts, doc.get("batteryLevel"), "%", rejections)
        return Decoded(
            device_id=device_id,
            readings=(r,) if r is not None else (),
            rejections=tuple(rejections),
            format=self.name,
            meta=meta,
        )

    @staticmethod
    def _time(doc: dict[str, Any], received_at: datetime) -> datetime:
        raw = doc.get("time")
        if raw is None:
            return received_at
        if not isinstance(raw, str):
            raise DecodeError(f"time must be an RFC 3339 string, not {json_kind(raw)}")
        try:
            return parse_rfc3339(raw)
        except ValueError as exc:
            raise DecodeError(f"event {str(exc)[:200]}") from None
        except OverflowError:
            raise DecodeError(f"event time {raw[:40]!r} is out of range") from None
