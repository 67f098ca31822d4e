"""Which device formats ingest decodes: the decoders built from configuration, and the one for a topic.

Configuration is a mapping from each enabled format's name to its options, a flat dict of simple
values (or the same dict as a JSON string; {} or None for the defaults). placewatch/cli.py builds it
from PLACEWATCH_FORMATS and PLACEWATCH_FORMAT_OPTIONS:

    {"native": {"prefix": "placewatch/v1"}, "tts": {"codecs": "lht-1=dragino-lht65"}, "zigbee2mqtt": {}}

e.g. PLACEWATCH_FORMATS="native,tts,chirpstack,zigbee2mqtt,tasmota,senml" and
PLACEWATCH_FORMAT_OPTIONS='{"tts": {"codecs": "lht-1=dragino-lht65", "app_codecs": "homes=milesight-em300-th"}}'.
A `formats` key (a comma-separated string or a list of names) may name the enabled formats instead;
then the other keys are options, and options for a format it does not name are refused. The native
decoder, when enabled, is built first, so its topics win.

Formats and their options (all optional):
- native: prefix (default "placewatch/v1"): placewatch/v1/devices/{id}/readings and /status.
- tts: topics (default "v3/+/devices/+/up"); codecs (device id or DevEUI -> codec); app_codecs
  (application id -> codec, used for its devices with no codec of their own).
- chirpstack: topics (default "application/+/device/+/event/up,application/+/device/+/event/status");
  codecs (DevEUI or device name -> codec); app_codecs (application id or name -> codec).
- zigbee2mqtt: base_topic (default "zigbee2mqtt").
- tasmota: prefix (default "tele"); zone (device-local time zone, default "Europe/London").
- senml: topics (default "senml/#").
`topics` is a comma-separated string of MQTT filters or a list; `codecs` and `app_codecs` are
"key=codec,key=codec" strings or mappings; codec names are those of codecs.CODECS
(milesight-em300-th, dragino-lht65). Unknown formats, unknown options, options for a format that is not
enabled and unknown codecs are refused with a ValueError that names them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.formats import FORMATS, OPTIONS

from . import chirpstack, senml, tts
from .base import Decoder
from .chirpstack import ChirpStackDecoder
from .native import NativeDecoder
from .senml import SenMLDecoder
from .tasmota import TasmotaDecoder
from .tts import TTSDecoder
from .zigbee2mqtt import Zigbee2MQTTDecoder


@dataclass(frozen=True, slots=True)
class FormatConfig:
    """The enabled formats (native first) and each one's options, checked."""

    formats: tuple[str, ...] = ("native",)
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> FormatConfig:
        """Check a configuration mapping (see the module docstring); raise ValueError naming what is wrong."""
        names = _names(config["formats"]) if "formats" in config else list(config)
        unknown = [n for n in names if n not in OPTIONS]
        if unknown:
            raise ValueError(f"unknown format(s) {', '.join(unknown)}; known: {', '.join(FORMATS)}")
        if "formats" in config and not names:
            raise ValueError("no device format is enabled; enable at least one, e.g. native")
        names = names or ["native"]  # an empty configuration means the defaults
        # Native first when enabled, so its topics win; leave it out for a broker that carries none of
        # ours (an ingest pointed at a LoRaWAN network server's own MQTT broker).
        formats = (*(["native"] if "native" in names else []), *dict.fromkeys(n for n in names if n != "native"))
        options: dict[str, Mapping[str, Any]] = {}
        for key, value in config.items():
            if key == "formats":
                continue
            if key not in OPTIONS:
                raise ValueError(
                    f"unknown configuration key {key!r}; expected 'formats' or one of {', '.join(FORMATS)}"
                )
            opts = _options(key, value)
            if not opts:
                continue
            if key not in formats:
                raise ValueError(f"options are given for {key}, which is not enabled in formats")
            bad = sorted(set(opts) - OPTIONS[key])
            if bad:
                raise ValueError(
                    f"unknown option(s) {', '.join(bad)} for {key}; allowed: {', '.join(sorted(OPTIONS[key]))}"
                )
            options[key] = opts
        return cls(formats=formats, options=options)


def build_decoders(config: Mapping[str, Any] | FormatConfig) -> list[Decoder]:
    """The decoders for the enabled formats, native first; raise ValueError for bad configuration."""
    fc = config if isinstance(config, FormatConfig) else FormatConfig.from_mapping(config)
    decoders: list[Decoder] = []
    for name in fc.formats:
        try:
            decoders.append(_BUILDERS[name](dict(fc.options.get(name, {}))))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return decoders


def pick(decoders: Sequence[Decoder], topic: str) -> Decoder | None:
    """The first decoder that owns the topic (native comes first), or None."""
    return next((d for d in decoders if d.matches(topic)), None)


def all_subscriptions(decoders: Sequence[Decoder]) -> list[str]:
    """Every topic filter the decoders need, once each, in order."""
    return list(dict.fromkeys(f for d in decoders for f in d.subscriptions()))


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        return [n.strip() for n in value.split(",") if n.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(n, str) for n in value):
        return [n.strip() for n in value if n.strip()]
    raise ValueError(f"formats must be a comma-separated string or a list of names, not {value!r}")


def _options(name: str, value: object) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"options for {name} are not valid JSON: {exc}") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"options for {name} must be an object of option: value, not {type(value).__name__}")
    return {str(k): v for k, v in value.items() if v is not None}


def _text(opts: Mapping[str, Any], key: str, default: str) -> str:
    value = opts.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"option {key} must be a non-empty string, not {value!r}")
    return value.strip()


def _topics(opts: Mapping[str, Any], default: Sequence[str]) -> list[str]:
    value = opts.get("topics", list(default))
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
        raise ValueError(f"option topics must be a comma-separated string or a list of topic filters, not {value!r}")
    topics = [t.strip() for t in value if t.strip()]
    if not topics:
        raise ValueError("option topics names no topic filter")
    return topics


def _pairs(opts: Mapping[str, Any], key: str) -> dict[str, str]:
    value = opts.get(key, {})
    if isinstance(value, str):
        out: dict[str, str] = {}
        for item in value.split(","):
            if not item.strip():
                continue
            k, sep, v = item.partition("=")
            if not sep or not k.strip() or not v.strip():
                raise ValueError(f"option {key}: {item.strip()!r} is not key=codec")
            out[k.strip()] = v.strip()
        return out
    if isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return {k.strip(): v.strip() for k, v in value.items()}
    raise ValueError(f"option {key} must be 'key=codec,...' or an object of key: codec, not {value!r}")


_BUILDERS: dict[str, Callable[[dict[str, Any]], Decoder]] = {
    "native": lambda o: NativeDecoder(_text(o, "prefix", "placewatch/v1")),
    "tts": lambda o: TTSDecoder(
        _topics(o, tts.DEFAULT_TOPICS), codecs=_pairs(o, "codecs"), app_codecs=_pairs(o, "app_codecs")
    ),
    "chirpstack": lambda o: ChirpStackDecoder(
        _topics(o, chirpstack.DEFAULT_TOPICS), codecs=_pairs(o, "codecs"), app_codecs=_pairs(o, "app_codecs")
    ),
    "zigbee2mqtt": lambda o: Zigbee2MQTTDecoder(_text(o, "base_topic", "zigbee2mqtt")),
    "tasmota": lambda o: TasmotaDecoder(_text(o, "prefix", "tele"), _text(o, "zone", "Europe/London")),
    "senml": lambda o: SenMLDecoder(_topics(o, senml.DEFAULT_TOPICS)),
}
