"""The Things Stack v3 MQTT uplinks: v3/{application}[@{tenant}]/devices/{device}/up.

Device id: end_device_ids.device_id (it must agree with the topic). Time: uplink_message.received_at,
else received_at (RFC 3339, nanoseconds), else the time ingest received the message. Values come from
uplink_message.decoded_payload when a payload formatter is set, else from frm_payload (base64) through
the built-in codec configured for the device (device id or DevEUI) or its application; see codecs.py
for the key mapping. The Things Stack omits empty, zero and false fields, so every field is optional.
Other events (join, down/..., service/data) on subscribed topics are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from core.model import Decoded, DecodeError
from core.timeparse import parse_rfc3339

from .base import FilteredTopics, json_kind, load_json
from .codecs import CodecTable, uplink_decoded

DEFAULT_TOPICS = ("v3/+/devices/+/up",)


class TTSDecoder(FilteredTopics):
    """Uplinks from The Things Stack v3 (The Things Network, Cloud, Enterprise, Open Source)."""

    name = "tts"

    def __init__(
        self,
        topics: Sequence[str] = DEFAULT_TOPICS,
        *,
        codecs: Mapping[str, str] | None = None,
        app_codecs: Mapping[str, str] | None = None,
    ) -> None:
        self.set_topics(topics, "v3/+/devices/+/up")
        self.codecs = CodecTable(codecs, app_codecs)

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> Decoded:
        """Decode one uplink message; other event types yield nothing."""
        parts = topic.split("/")
        topic_app = topic_device = None
        if len(parts) >= 5 and parts[0] == "v3" and parts[2] == "devices":
            topic_app, topic_device, kind = parts[1], parts[3], "/".join(parts[4:])
        else:
            kind = parts[-1]
        if kind != "up":
            return Decoded(device_id=None, format=self.name, meta={"ignored": f"{kind} event"})
        doc = load_json(payload)
        if not isinstance(doc, dict):
            raise DecodeError(f"uplink must be a JSON object, not {json_kind(doc)}")
        ids = doc.get("end_device_ids")
        ids = ids if isinstance(ids, dict) else {}
        device_id = ids.get("device_id")
        if device_id is not None and not isinstance(device_id, str):
            raise DecodeError(f"end_device_ids.device_id must be a string, not {json_kind(device_id)}")
        if device_id is None:
            device_id = topic_device
        if not isinstance(device_id, str) or not device_id:
            raise DecodeError("uplink has no end_device_ids.device_id and the topic names no device")
        if topic_device is not None and device_id != topic_device:
            raise DecodeError(f"payload names device {device_id!r} but the topic names {topic_device!r}")
        uplink = doc.get("uplink_message")
        if not isinstance(uplink, dict):
            raise DecodeError("message has no uplink_message object: not an uplink")
        app_ids = ids.get("application_ids")
        application = app_ids.get("application_id") if isinstance(app_ids, dict) else None
        if not isinstance(application, str):
            application = topic_app.split("@")[0] if topic_app else None
        meta = {"application": application} if application else {}
        if doc.get("simulated") is True:
            meta["simulated"] = "true"
        codec = self.codecs.codec_for((device_id, ids.get("dev_eui")), (application, topic_app))
        return uplink_decoded(
            fmt=self.name,
            device_id=device_id,
            ts=self._time(uplink, doc, received_at),
            decoded_payload=uplink.get("decoded_payload"),
            data=uplink.get("frm_payload"),
            f_port=uplink.get("f_port"),
            codec=codec,
            meta=meta,
        )

    @staticmethod
    def _time(uplink: dict[str, object], doc: dict[str, object], received_at: datetime) -> datetime:
        for where, raw in (
            ("uplink_message.received_at", uplink.get("received_at")),
            ("received_at", doc.get("received_at")),
        ):
            if raw is None:
                continue
            if not isinstance(raw, str):
                raise DecodeError(f"{where} must be an RFC 3339 string, not {json_kind(raw)}")
            try:
                return parse_rfc3339(raw)
            except ValueError as exc:
                raise DecodeError(f"{where}: {str(exc)[:200]}") from None
            except OverflowError:
                raise DecodeError(f"{where} {raw[:40]!r} is out of range") from None
        return received_at
