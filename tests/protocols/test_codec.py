"""Bytes on a topic to a typed message and back; whatever arrives, a message or a ProtocolError."""

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import errors
from protocols.codec import DEFAULT_LIMIT, LIMITS, Inbound, decode, encode
from protocols.errors import (
    MalformedMessage,
    NonCanonicalValue,
    PayloadTooLarge,
    ProtocolError,
    UnknownTopic,
    UnsupportedVersion,
)
from protocols.messages import (
    BY_CHANNEL,
    MAX_BATCH_RECORDS,
    Command,
    CommandResult,
    DesiredConfig,
    DesiredRelease,
    Event,
    JournalAck,
    JournalBatch,
    JournalRecord,
    Message,
    State,
    Status,
    Telemetry,
)
from protocols.topics import DEVICE_ID_PATTERN, Channel, TopicAddress, device_topic

DEVICE = "store-042-reg-1"

# -- strategies ------------------------------------------------------------------------------------

device_ids = st.from_regex(DEVICE_ID_PATTERN, fullmatch=True)
text = st.text(max_size=16)
#: What the contract allows in an id, a kind or a label: no control characters.
printable = st.characters(exclude_categories=("Cc", "Cs"))
identifiers = st.text(printable, min_size=1, max_size=16)
labels = st.text(printable, max_size=16)
millis = st.integers(0, 2**48)
hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | text
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=10,
)
json_objects = st.dictionaries(text, json_values, max_size=4)
# What a hostile publisher can put in a payload: floats, NaN and all.
any_json = st.recursive(
    json_scalars | st.floats(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=10,
)


@st.composite
def journal_records(draw: st.DrawFn) -> list[JournalRecord]:
    first = draw(st.integers(1, 2**40))
    count = draw(st.integers(1, 5))
    return [
        JournalRecord(
            seq=seq,
            kind=draw(st.text(printable, min_size=1, max_size=64)),
            ts=draw(millis),
            prev_hash=draw(hex64),
            hash=draw(hex64),
            body=draw(json_objects),
        )
        for seq in range(first, first + count)
    ]


MESSAGES: dict[Channel, st.SearchStrategy[Message]] = {
    Channel.STATUS: st.builds(
        Status,
        state=st.sampled_from(["online", "offline"]),
        boot_id=text,
        versions=st.dictionaries(text, text, max_size=3),
        ts=millis,
    ),
    Channel.JOURNAL: st.builds(JournalBatch, records=journal_records(), sent_at=millis),
    Channel.JOURNAL_ACK: st.builds(
        JournalAck,
        hwm=st.integers(0, 2**48),
        head_hash=hex64,
        resend_from=st.none() | st.integers(1, 2**48),
        error=st.none() | st.text(st.characters(exclude_characters="\x00"), max_size=16),
    ),
    Channel.STATE: st.builds(
        State,
        config_version=st.integers(0, 2**63 - 1),
        app_release=text,
        slot=st.sampled_from(["a", "b", ""]),
        peripherals=st.dictionaries(text, json_objects, max_size=3),
    ),
    Channel.TELEMETRY: st.builds(
        Telemetry,
        ts=millis,
        backlog=st.integers(0, 2**32),
        last_seq=st.integers(0, 2**32),
        lag_ms=st.none() | st.integers(0, 2**32),
        metrics=st.dictionaries(
            text, st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
        ),
    ),
    Channel.EVENTS: st.builds(Event, kind=text, ts=millis, body=json_objects),
    Channel.CONFIG: st.builds(DesiredConfig, version=st.integers(1, 2**31), doc=json_objects),
    Channel.RELEASE: st.builds(
        DesiredRelease,
        version=identifiers,
        url=identifiers,
        sha256=hex64,
        signature=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1),
        window=st.none() | labels,
    ),
    Channel.CMD: st.builds(Command, id=identifiers, name=identifiers, args=json_objects),
    Channel.CMD_RESULT: st.builds(
        CommandResult, id=text, ok=st.booleans(), result=json_objects, error=st.none() | text
    ),
}

# One small valid payload per channel, for the error tests.
VALID: dict[Channel, dict[str, Any]] = {
    Channel.STATUS: {"schema": "sf.status", "v": 1, "state": "online"},
    Channel.JOURNAL: {
        "schema": "sf.journal",
        "v": 1,
        "records": [
            {"seq": 1, "kind": "k", "ts": 0, "prev_hash": "0" * 64, "hash": "a" * 64, "body": {}}
        ],
    },
    Channel.JOURNAL_ACK: {"schema": "sf.journal.ack", "v": 1, "hwm": 0, "head_hash": "0" * 64},
    Channel.STATE: {"schema": "sf.state", "v": 1},
    Channel.TELEMETRY: {"schema": "sf.telemetry", "v": 1, "ts": 0},
    Channel.EVENTS: {"schema": "sf.event", "v": 1, "kind": "drawer.opened", "ts": 0},
    Channel.CONFIG: {"schema": "sf.config", "v": 1, "version": 1, "doc": {}},
    Channel.RELEASE: {
        "schema": "sf.release",
        "v": 1,
        "version": "1.2.3",
        "url": "https://example.invalid/b",
        "sha256": "0" * 64,
        "signature": "sig",
    },
    Channel.CMD: {"schema": "sf.cmd", "v": 1, "id": "c1", "name": "reboot"},
    Channel.CMD_RESULT: {"schema": "sf.cmd.result", "v": 1, "id": "c1", "ok": True},
}

CHANNELS = [pytest.param(channel, id=channel.name) for channel in Channel]


def _topic(channel: Channel) -> str:
    return device_topic(DEVICE, channel)


def _dumps(raw: object) -> bytes:
    return json.dumps(raw, separators=(",", ":")).encode()


def _decode_or_error(topic: str, payload: bytes) -> Inbound | ProtocolError:
    """Only a ProtocolError may come out of decode; anything else propagates and fails."""
    try:
        return decode(topic, payload)
    except ProtocolError as err:
        return err


# -- round trips -----------------------------------------------------------------------------------


def test_every_channel_has_a_message_and_a_strategy() -> None:
    assert set(BY_CHANNEL) == set(Channel) == set(MESSAGES) == set(VALID)
    assert all(cls.channel is channel for channel, cls in BY_CHANNEL.items())


@pytest.mark.parametrize("channel", CHANNELS)
@settings(derandomize=True, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), device_id=device_ids)
def test_encode_decode_round_trip(channel: Channel, data: st.DataObject, device_id: str) -> None:
    message = data.draw(MESSAGES[channel])

    inbound = decode(device_topic(device_id, channel), encode(message))

    assert inbound == Inbound(TopicAddress(device_id, channel), message)
    assert type(inbound.message) is BY_CHANNEL[channel]


@pytest.mark.parametrize("channel", CHANNELS)
@settings(derandomize=True)
@given(data=st.data())
def test_wire_form_is_json_with_schema_and_v_first(channel: Channel, data: st.DataObject) -> None:
    message = data.draw(MESSAGES[channel])
    cls = BY_CHANNEL[channel]

    wire = encode(message)

    assert wire.startswith(f'{{"schema":"{cls.schema_name}","v":1,'.encode())
    assert json.loads(wire) == message.model_dump(mode="json", by_alias=True)


@pytest.mark.parametrize("channel", CHANNELS)
def test_valid_examples_decode(channel: Channel) -> None:
    inbound = decode(_topic(channel), _dumps(VALID[channel]))

    assert type(inbound.message) is BY_CHANNEL[channel]


# -- nothing but ProtocolError ---------------------------------------------------------------------


@settings(derandomize=True, max_examples=200)
@given(topic=st.text(max_size=60), payload=st.binary(max_size=200))
def test_any_bytes_on_any_topic(topic: str, payload: bytes) -> None:
    assert isinstance(_decode_or_error(topic, payload), Inbound | ProtocolError)


@settings(derandomize=True, max_examples=200)
@given(channel=st.sampled_from(Channel), device_id=device_ids, payload=st.binary(max_size=300))
def test_any_bytes_on_a_valid_topic(channel: Channel, device_id: str, payload: bytes) -> None:
    result = _decode_or_error(device_topic(device_id, channel), payload)

    assert isinstance(result, MalformedMessage | Inbound)


@st.composite
def hostile_objects(draw: st.DrawFn, channel: Channel) -> dict[str, Any]:
    """A JSON object close to the channel's schema: right or wrong schema and v, random fields."""
    raw: dict[str, Any] = draw(st.dictionaries(text, any_json, max_size=4))
    base = draw(st.sampled_from([{}, VALID[channel]]))
    mutated = {**base, **raw}
    field = draw(st.sampled_from(sorted(VALID[channel])))
    mutated[field] = draw(any_json | st.just(VALID[channel][field]))
    mutated["schema"] = draw(
        st.sampled_from([BY_CHANNEL[channel].schema_name, "sf.status", "sf.nope", None, 1])
    )
    mutated["v"] = draw(st.sampled_from([1, 2, 0, "1", None, -1]) | any_json)
    return mutated


@pytest.mark.parametrize("channel", CHANNELS)
@settings(derandomize=True, max_examples=100)
@given(data=st.data())
def test_any_json_object_on_a_valid_topic(channel: Channel, data: st.DataObject) -> None:
    payload = json.dumps(data.draw(hostile_objects(channel))).encode()

    result = _decode_or_error(_topic(channel), payload)

    assert isinstance(result, MalformedMessage | Inbound)


@pytest.mark.parametrize("channel", CHANNELS)
@settings(derandomize=True)
@given(data=st.data())
def test_a_valid_message_with_one_field_replaced(channel: Channel, data: st.DataObject) -> None:
    raw = json.loads(encode(data.draw(MESSAGES[channel])))
    field = data.draw(st.sampled_from(sorted(raw)))
    raw[field] = data.draw(any_json)

    result = _decode_or_error(_topic(channel), json.dumps(raw).encode())

    assert isinstance(result, MalformedMessage | Inbound)


# -- versions and schemas --------------------------------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "version",
    [
        pytest.param(2, id="newer"),
        pytest.param(0, id="zero"),
        pytest.param("1", id="string"),
        pytest.param(None, id="null"),
        pytest.param([1], id="list"),
    ],
)
def test_wrong_version_is_unsupported(channel: Channel, version: object) -> None:
    payload = _dumps({**VALID[channel], "v": version})

    with pytest.raises(UnsupportedVersion) as info:
        decode(_topic(channel), payload)

    assert info.value.schema == BY_CHANNEL[channel].schema_name
    assert info.value.version == version
    assert info.value.metric_label == "unsupported_version"


@pytest.mark.parametrize(
    "version",
    [pytest.param(True, id="true"), pytest.param(1.0, id="float-one")],
)
def test_version_must_be_the_integer_one(version: object) -> None:
    with pytest.raises(UnsupportedVersion):
        decode(_topic(Channel.STATUS), _dumps({**VALID[Channel.STATUS], "v": version}))


@pytest.mark.parametrize("channel", CHANNELS)
def test_missing_version_is_unsupported(channel: Channel) -> None:
    raw = {key: value for key, value in VALID[channel].items() if key != "v"}

    with pytest.raises(UnsupportedVersion):
        decode(_topic(channel), _dumps(raw))


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "schema",
    [
        pytest.param("sf.nope", id="unknown"),
        pytest.param(None, id="null"),
        pytest.param("SF.STATUS", id="case"),
    ],
)
def test_wrong_schema_is_malformed(channel: Channel, schema: object) -> None:
    payload = _dumps({**VALID[channel], "schema": schema, "v": 2})

    with pytest.raises(MalformedMessage) as info:
        decode(_topic(channel), payload)

    assert type(info.value) is MalformedMessage
    assert info.value.topic == _topic(channel)
    assert info.value.metric_label == "malformed"


@pytest.mark.parametrize("channel", CHANNELS)
def test_another_channels_message_is_malformed(channel: Channel) -> None:
    other = Channel.EVENTS if channel is Channel.STATUS else Channel.STATUS

    with pytest.raises(MalformedMessage, match="expected schema") as info:
        decode(_topic(channel), _dumps(VALID[other]))

    assert type(info.value) is MalformedMessage


@pytest.mark.parametrize(
    ("channel", "change"),
    [
        pytest.param(Channel.STATUS, {"bogus": 1}, id="unknown-field"),
        pytest.param(Channel.STATUS, {"state": "away"}, id="bad-literal"),
        pytest.param(Channel.STATUS, {"ts": -1}, id="negative-ts"),
        pytest.param(Channel.JOURNAL_ACK, {"head_hash": "A" * 64}, id="upper-hex"),
        pytest.param(Channel.JOURNAL_ACK, {"resend_from": 0}, id="resend-from-zero"),
        pytest.param(Channel.CONFIG, {"version": 0}, id="config-version-zero"),
        pytest.param(Channel.RELEASE, {"sha256": "0" * 63}, id="short-sha"),
        pytest.param(Channel.TELEMETRY, {"ts": None}, id="null-ts"),
        pytest.param(Channel.CMD, {"args": []}, id="args-not-object"),
    ],
)
def test_schema_violations_are_malformed(channel: Channel, change: dict[str, Any]) -> None:
    with pytest.raises(MalformedMessage, match=BY_CHANNEL[channel].schema_name + " invalid at"):
        decode(_topic(channel), _dumps({**VALID[channel], **change}))


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not json", id="text"),
        pytest.param(b"\xff\xfe\x00", id="not-utf8"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'"sf.status"', id="string"),
        pytest.param(b"1", id="number"),
        pytest.param(b"null", id="null"),
        pytest.param(b'{"schema":"sf.status","v":1,"state":"online"', id="truncated"),
    ],
)
def test_non_objects_are_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(_topic(Channel.STATUS), payload)


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_truncated_prefix_is_malformed(channel: Channel) -> None:
    wire = _dumps(VALID[channel])

    results = [_decode_or_error(_topic(channel), wire[:end]) for end in range(len(wire))]

    assert all(type(result) is MalformedMessage for result in results)


def test_unknown_topic_is_refused_before_the_payload_is_read() -> None:
    with pytest.raises(UnknownTopic):
        decode("sf/v1/d/store-1/bogus", b"\xff" * (5 * 1024 * 1024))


# -- size limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
def test_payload_over_the_limit_is_too_large_before_parsing(channel: Channel) -> None:
    limit = LIMITS.get(channel, DEFAULT_LIMIT)

    with pytest.raises(PayloadTooLarge) as info:
        decode(_topic(channel), b"\xff" * (limit + 1))

    assert (info.value.size, info.value.limit) == (limit + 1, limit)
    assert info.value.metric_label == "too_large"


@pytest.mark.parametrize("channel", CHANNELS)
def test_payload_at_the_limit_is_parsed(channel: Channel) -> None:
    limit = LIMITS.get(channel, DEFAULT_LIMIT)

    with pytest.raises(MalformedMessage):
        decode(_topic(channel), b"\xff" * limit)


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_valid_message_padded_over_the_limit_is_too_large(channel: Channel) -> None:
    limit = LIMITS.get(channel, DEFAULT_LIMIT)
    wire = _dumps(VALID[channel])

    with pytest.raises(PayloadTooLarge):
        decode(_topic(channel), wire + b" " * (limit + 1 - len(wire)))


def test_journal_and_config_allow_more_than_the_default() -> None:
    assert LIMITS[Channel.JOURNAL] > LIMITS[Channel.CONFIG] > DEFAULT_LIMIT


# -- journal batches -------------------------------------------------------------------------------


def _record(seq: int) -> dict[str, Any]:
    return {"seq": seq, "kind": "k", "ts": 0, "prev_hash": "0" * 64, "hash": "a" * 64, "body": {}}


@pytest.mark.parametrize(
    "seqs",
    [
        pytest.param([1, 3], id="gap"),
        pytest.param([2, 1], id="backwards"),
        pytest.param([1, 1], id="repeat"),
        pytest.param([5, 6, 8], id="gap-later"),
        pytest.param([], id="empty"),
        pytest.param([0], id="seq-zero"),
    ],
)
def test_journal_batch_needs_consecutive_records(seqs: list[int]) -> None:
    payload = _dumps({"schema": "sf.journal", "v": 1, "records": [_record(s) for s in seqs]})

    with pytest.raises(MalformedMessage):
        decode(_topic(Channel.JOURNAL), payload)


def test_journal_batch_of_the_maximum_size_decodes() -> None:
    records = [_record(seq) for seq in range(1, MAX_BATCH_RECORDS + 1)]
    payload = _dumps({"schema": "sf.journal", "v": 1, "records": records})

    inbound = decode(_topic(Channel.JOURNAL), payload)

    assert isinstance(inbound.message, JournalBatch)
    assert len(inbound.message.records) == MAX_BATCH_RECORDS


def test_journal_batch_over_the_maximum_is_malformed() -> None:
    records = [_record(seq) for seq in range(1, MAX_BATCH_RECORDS + 2)]
    payload = _dumps({"schema": "sf.journal", "v": 1, "records": records})

    with pytest.raises(MalformedMessage, match="records"):
        decode(_topic(Channel.JOURNAL), payload)


def test_journal_batch_refuses_non_consecutive_records_when_built() -> None:
    records = [JournalRecord(**_record(1)), JournalRecord(**_record(3))]

    with pytest.raises(ValueError, match="consecutive"):
        JournalBatch(schema="sf.journal", records=records)


# -- hostile nesting and numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "payload"),
    [
        pytest.param(Channel.JOURNAL, b"[" * 100_000, id="100k-open-brackets"),
        pytest.param(Channel.JOURNAL, b"[" * 100_000 + b"]" * 100_000, id="100k-closed"),
        pytest.param(
            Channel.STATUS, b'{"schema":"sf.status","v":1,"x":' + b"[" * 60_000, id="in-object"
        ),
        pytest.param(Channel.EVENTS, b'{"a":' * 10_000 + b"1" + b"}" * 10_000, id="nested-objects"),
    ],
)
def test_deep_nesting_is_malformed_not_recursion_error(channel: Channel, payload: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(_topic(channel), payload)


def test_an_integer_with_too_many_digits_is_malformed() -> None:
    payload = b'{"schema":"sf.status","v":1,"state":"online","ts":' + b"9" * 5000 + b"}"

    with pytest.raises(MalformedMessage):
        decode(_topic(Channel.STATUS), payload)


def _journal_with_body(body_json: bytes) -> bytes:
    wire = _dumps({"schema": "sf.journal", "v": 1, "records": [{**_record(1), "body": {}}]})
    return wire.replace(b'"body":{}', b'"body":' + body_json)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"d":"\\ud800"}', id="lone-high"),
        pytest.param(b'{"d":"\\uDFFF"}', id="lone-low-upper-case"),
        pytest.param(b'{"d":"x\\ud83d"}', id="half-a-pair"),
        pytest.param(b'{"\\ud800":1}', id="in-a-key"),
    ],
)
def test_a_lone_surrogate_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedMessage, match="surrogate"):
        decode(_topic(Channel.JOURNAL), _journal_with_body(body))


def test_a_surrogate_pair_escape_is_one_character() -> None:
    inbound = decode(_topic(Channel.JOURNAL), _journal_with_body(b'{"d":"\\ud83d\\ude00"}'))

    assert isinstance(inbound.message, JournalBatch)
    assert inbound.message.records[0].body == {"d": "\U0001f600"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"total":12.99}', id="decimal-point"),
        pytest.param(b'{"total":1e3}', id="exponent"),
        pytest.param(b'{"total":-0.0}', id="negative-zero"),
        pytest.param(b'{"lines":[{"qty":0.5}]}', id="nested"),
        pytest.param(b'{"x":NaN}', id="nan"),
        pytest.param(b'{"x":-Infinity}', id="minus-infinity"),
    ],
)
def test_a_float_in_a_journal_body_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(_topic(Channel.JOURNAL), _journal_with_body(body))


def test_floats_are_fine_outside_the_journal() -> None:
    payload = _dumps({**VALID[Channel.EVENTS], "body": {"temperature": 21.5}})

    inbound = decode(_topic(Channel.EVENTS), payload)

    assert isinstance(inbound.message, Event)
    assert inbound.message.body == {"temperature": 21.5}


# -- error labels ----------------------------------------------------------------------------------


def _subclasses(cls: type[ProtocolError]) -> list[type[ProtocolError]]:
    return [sub for direct in cls.__subclasses__() for sub in [direct, *_subclasses(direct)]]


@pytest.mark.parametrize(
    ("error", "label"),
    [
        pytest.param(ProtocolError("x"), "protocol_error", id="base"),
        pytest.param(UnknownTopic("x"), "unknown_topic", id="unknown-topic"),
        pytest.param(PayloadTooLarge(2, 1), "too_large", id="too-large"),
        pytest.param(MalformedMessage("x"), "malformed", id="malformed"),
        pytest.param(UnsupportedVersion("sf.status", 2), "unsupported_version", id="version"),
        pytest.param(NonCanonicalValue("x"), "non_canonical", id="non-canonical"),
    ],
)
def test_each_error_has_a_metric_label(error: ProtocolError, label: str) -> None:
    assert error.metric_label == label


def test_every_protocol_error_subclass_has_its_own_label() -> None:
    classes = [cls for cls in _subclasses(ProtocolError) if cls.__module__ == errors.__name__]
    labels = {cls: errors._LABELS.get(cls) for cls in classes}

    assert None not in labels.values()
    assert len(set(labels.values())) == len(classes)


def test_error_names_topic_and_reason() -> None:
    err = MalformedMessage("bad", topic="sf/v1/d/abc/status")

    assert (err.reason, err.topic) == ("bad", "sf/v1/d/abc/status")
    assert str(err) == "bad (topic 'sf/v1/d/abc/status')"
