"""MQTT topics and NATS subjects: the mapping nats-server's MQTT listener applies, and its inverse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.transport import filter_to_subject, subject_to_topic, topic_to_subject


@pytest.mark.parametrize(
    ("topic", "subject"),
    [
        ("placewatch/v1/devices/plain/readings", "placewatch.v1.devices.plain.readings"),
        ("placewatch/v1/devices/gw/kitchen/readings", "placewatch.v1.devices.gw.kitchen.readings"),
        ("placewatch/v1/devices/urn:dev:ow:1/readings", "placewatch.v1.devices.urn:dev:ow:1.readings"),
        # What nats-server 2.9.10 published for these (read back from a stream in a real run):
        ("placewatch/v1/devices/a//b/readings", "placewatch.v1.devices.a./.b.readings"),
        ("placewatch/v1/devices/trail//readings", "placewatch.v1.devices.trail./.readings"),
        ("/lead", "/.lead"),
        ("end/", "end./"),
        ("spBv1.0/plant1", "spBv1//0.plant1"),  # nats-server 2.10+
    ],
)
def test_topic_and_subject_map_as_nats_server_does(topic, subject):
    assert topic_to_subject(topic) == subject
    assert subject_to_topic(subject) == topic


@given(
    st.lists(st.text(alphabet=st.characters(blacklist_characters="/ #+\x00", blacklist_categories=["Cs"])), min_size=1)
)
def test_every_topic_without_a_space_comes_back_unchanged(levels):
    topic = "/".join(levels)
    assert subject_to_topic(topic_to_subject(topic)) == topic


def test_a_topic_with_a_space_is_refused_as_nats_server_refuses_it():
    with pytest.raises(ValueError, match="space"):
        topic_to_subject("zigbee2mqtt/kitchen sensor")


def test_filters_become_subject_wildcards():
    assert filter_to_subject("placewatch/v1/devices/#") == "placewatch.v1.devices.>"
    assert filter_to_subject("application/+/device/+/event/up") == "application.*.device.*.event.up"
