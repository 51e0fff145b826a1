"""Topic names of the MQTT contract: build, parse, and refuse everything else."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import ProtocolError, UnknownTopic
from protocols.topics import (
    DEVICE_ID_PATTERN,
    UPSTREAM,
    Channel,
    TopicAddress,
    all_devices_filter,
    device_topic,
    parse_topic,
    shared_filter,
    validate_device_id,
)

device_ids = st.from_regex(DEVICE_ID_PATTERN, fullmatch=True)


def _parse_or_error(topic: str) -> TopicAddress | ProtocolError:
    try:
        return parse_topic(topic)
    except UnknownTopic as err:
        return err


@pytest.mark.parametrize("channel", list(Channel), ids=lambda c: c.name)
@settings(derandomize=True)
@given(device_id=device_ids)
def test_every_channel_round_trips(channel: Channel, device_id: str) -> None:
    topic = device_topic(device_id, channel)

    address = parse_topic(topic)

    assert address == TopicAddress(device_id=device_id, channel=channel)
    assert address.topic == topic


@pytest.mark.parametrize(
    ("device_id", "channel", "topic"),
    [
        pytest.param(
            "store-042-reg-1", Channel.STATUS, "sf/v1/d/store-042-reg-1/status", id="status"
        ),
        pytest.param("abc", Channel.JOURNAL, "sf/v1/d/abc/journal", id="journal"),
        pytest.param("abc", Channel.JOURNAL_ACK, "sf/v1/d/abc/journal/ack", id="journal-ack"),
        pytest.param("0a-", Channel.CMD_RESULT, "sf/v1/d/0a-/cmd/result", id="cmd-result"),
    ],
)
def test_topic_golden_strings(device_id: str, channel: Channel, topic: str) -> None:
    assert device_topic(device_id, channel) == topic


BAD_DEVICE_IDS = [
    pytest.param("", id="empty"),
    pytest.param("ab", id="too-short"),
    pytest.param("a" * 64, id="too-long"),
    pytest.param("-abc", id="leading-dash"),
    pytest.param("Store-1", id="upper-case"),
    pytest.param("store_1", id="underscore"),
    pytest.param("store 1", id="space"),
    pytest.param("store-1\n", id="trailing-newline"),
    pytest.param("störe", id="non-ascii"),
    pytest.param("+", id="single-level-wildcard"),
    pytest.param("#", id="multi-level-wildcard"),
    pytest.param("st+re", id="embedded-wildcard"),
]


@pytest.mark.parametrize("device_id", BAD_DEVICE_IDS)
def test_bad_device_id_cannot_be_built(device_id: str) -> None:
    with pytest.raises(UnknownTopic):
        device_topic(device_id, Channel.STATUS)


@pytest.mark.parametrize("device_id", BAD_DEVICE_IDS)
def test_bad_device_id_cannot_be_parsed(device_id: str) -> None:
    with pytest.raises(UnknownTopic) as info:
        parse_topic(f"sf/v1/d/{device_id}/status")

    assert info.value.topic == f"sf/v1/d/{device_id}/status"


@pytest.mark.parametrize("device_id", ["abc", "a" * 63, "0-0", "store-042-reg-1"])
def test_validate_device_id_returns_a_good_id(device_id: str) -> None:
    assert validate_device_id(device_id) == device_id


@pytest.mark.parametrize(
    "topic",
    [
        pytest.param("", id="empty"),
        pytest.param("sf/v2/d/store-1/status", id="other-version"),
        pytest.param("xx/v1/d/store-1/status", id="foreign-root"),
        pytest.param("/sf/v1/d/store-1/status", id="leading-slash"),
        pytest.param("SF/v1/d/store-1/status", id="upper-case-prefix"),
        pytest.param("sf/v1/s/store-1/status", id="not-a-device-subtree"),
        pytest.param("sf/v1/d", id="prefix-only"),
        pytest.param("sf/v1/d/", id="prefix-with-slash"),
        pytest.param("$SYS/broker/uptime", id="broker-sys"),
        pytest.param("$share/ingest/sf/v1/d/+/journal", id="shared-filter"),
    ],
)
def test_foreign_topics_are_unknown(topic: str) -> None:
    with pytest.raises(UnknownTopic):
        parse_topic(topic)


@pytest.mark.parametrize(
    "topic",
    [
        pytest.param("sf/v1/d/store-1", id="no-channel"),
        pytest.param("sf/v1/d/store-1/", id="empty-channel"),
        pytest.param("sf/v1/d/store-1/bogus", id="unknown-channel"),
        pytest.param("sf/v1/d/store-1/STATUS", id="upper-case-channel"),
        pytest.param("sf/v1/d/store-1/status/", id="trailing-slash"),
        pytest.param("sf/v1/d/store-1/status/extra", id="extra-level"),
        pytest.param("sf/v1/d/store-1/journal/nack", id="unknown-sub-channel"),
        pytest.param("sf/v1/d/store-1/ack", id="sub-channel-alone"),
        pytest.param("sf/v1/d/store-1/#", id="wildcard-channel"),
        pytest.param("sf/v1/d/+/journal", id="wildcard-device"),
    ],
)
def test_unknown_channels_are_unknown(topic: str) -> None:
    with pytest.raises(UnknownTopic) as info:
        parse_topic(topic)

    assert info.value.topic == topic
    assert info.value.metric_label == "unknown_topic"


@settings(derandomize=True)
@given(topic=st.text(max_size=80))
def test_any_text_parses_to_its_own_address_or_is_unknown(topic: str) -> None:
    result = _parse_or_error(topic)

    assert isinstance(result, TopicAddress | UnknownTopic)
    assert getattr(result, "topic", topic) == topic


@settings(derandomize=True)
@given(device_id=device_ids, channel=st.sampled_from(Channel), junk=st.text(max_size=10))
def test_a_topic_with_junk_after_the_channel_is_unknown(
    device_id: str, channel: Channel, junk: str
) -> None:
    with pytest.raises(UnknownTopic):
        parse_topic(f"{device_topic(device_id, channel)}/{junk}")


def test_shared_journal_filter() -> None:
    assert shared_filter(Channel.JOURNAL) == "$share/ingest/sf/v1/d/+/journal"


@pytest.mark.parametrize(
    ("channel", "group", "expected"),
    [
        pytest.param(Channel.STATUS, "ingest", "$share/ingest/sf/v1/d/+/status", id="status"),
        pytest.param(Channel.CMD_RESULT, "ops", "$share/ops/sf/v1/d/+/cmd/result", id="group"),
    ],
)
def test_shared_filter_names_group_and_channel(channel: Channel, group: str, expected: str) -> None:
    assert shared_filter(channel, group) == expected


@pytest.mark.parametrize("channel", list(Channel), ids=lambda c: c.name)
def test_all_devices_filter_has_one_wildcard_level(channel: Channel) -> None:
    assert all_devices_filter(channel) == f"sf/v1/d/+/{channel.value}"


def test_upstream_is_what_an_appliance_publishes() -> None:
    downstream = set(Channel) - UPSTREAM

    assert downstream == {Channel.JOURNAL_ACK, Channel.CONFIG, Channel.RELEASE, Channel.CMD}
