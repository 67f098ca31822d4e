"""The device formats Placewatch can decode and the option names each one takes: the vocabulary shared by
the settings (PLACEWATCH_FORMATS, PLACEWATCH_FORMAT_OPTIONS) and ingest's decoders (ingest/decoders/registry.py,
which says what each format and option means)."""

from __future__ import annotations

OPTIONS: dict[str, frozenset[str]] = {
    "native": frozenset({"prefix"}),
    "tts": frozenset({"topics", "codecs", "app_codecs"}),
    "chirpstack": frozenset({"topics", "codecs", "app_codecs"}),
    "zigbee2mqtt": frozenset({"base_topic"}),
    "tasmota": frozenset({"prefix", "zone"}),
    "senml": frozenset({"topics"}),
}
FORMATS: tuple[str, ...] = tuple(OPTIONS)
