"""Every field of every message is range-checked: out of range is malformed, never a crash later.

The defect behind these: an ``sf.journal.ack`` with ``hwm`` = 2^63 decoded fine, and the ledger's
SQLite bind raised ``OverflowError``, which stopped the register. Integers are now bounded by what
a 64-bit column holds on every channel; the messages a device receives also bound every string
and every object.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.codec import decode
from protocols.errors import MalformedMessage, ProtocolError
from protocols.limits import (
    ID_LENGTH,
    INT64_MAX,
    INT64_MIN,
    LABEL_LENGTH,
    MAP_ENTRIES,
    TEXT_LENGTH,
    URL_LENGTH,
)
from protocols.messages import (
    DOWNSTREAM,
    SIGNATURE_LENGTH,
    Command,
    DesiredConfig,
    DesiredRelease,
    JournalAck,
    Message,
)
from protocols.topics import Channel, device_topic

HEX = "0" * 64
RECORD = {"seq": 1, "kind": "sale.completed", "ts": 0, "prev_hash": HEX, "hash": HEX, "body": {}}
VALID: dict[Channel, dict[str, Any]] = {
    Channel.JOURNAL_ACK: {"schema": "sf.journal.ack", "v": 1, "hwm": 0, "head_hash": HEX},
    Channel.CONFIG: {"schema": "sf.config", "v": 1, "version": 1, "doc": {}},
    Channel.RELEASE: {
        "schema": "sf.release",
        "v": 1,
        "version": "1.2.3",
        "url": "https://example.invalid/b",
        "sha256": HEX,
        "signature": "c2ln",
    },
    Channel.CMD: {"schema": "sf.cmd", "v": 1, "id": "c1", "name": "drawer.open"},
    Channel.STATUS: {"schema": "sf.status", "v": 1, "state": "online"},
    Channel.JOURNAL: {"schema": "sf.journal", "v": 1, "records": [RECORD]},
    Channel.STATE: {"schema": "sf.state", "v": 1},
    Channel.TELEMETRY: {"schema": "sf.telemetry", "v": 1, "ts": 0},
    Channel.EVENTS: {"schema": "sf.event", "v": 1, "kind": "drawer.opened", "ts": 0},
    Channel.CMD_RESULT: {"schema": "sf.cmd.result", "v": 1, "id": "c1", "ok": True},
}

#: (channel, field, smallest valid value) of every integer field, downstream and upstream.
INT_FIELDS = [
    pytest.param(Channel.JOURNAL_ACK, "hwm", 0, id="ack-hwm"),
    pytest.param(Channel.JOURNAL_ACK, "resend_from", 1, id="ack-resend_from"),
    pytest.param(Channel.CONFIG, "version", 1, id="config-version"),
    pytest.param(Channel.STATUS, "ts", 0, id="status-ts"),
    pytest.param(Channel.JOURNAL, "sent_at", 0, id="journal-sent_at"),
    pytest.param(Channel.STATE, "config_version", 0, id="state-config_version"),
    pytest.param(Channel.TELEMETRY, "ts", 0, id="telemetry-ts"),
    pytest.param(Channel.TELEMETRY, "backlog", 0, id="telemetry-backlog"),
    pytest.param(Channel.TELEMETRY, "last_seq", 0, id="telemetry-last_seq"),
    pytest.param(Channel.TELEMETRY, "lag_ms", 0, id="telemetry-lag_ms"),
    pytest.param(Channel.EVENTS, "ts", 0, id="event-ts"),
]

#: (channel, field, longest valid string) of every bounded string a device receives.
STRING_FIELDS = [
    pytest.param(Channel.JOURNAL_ACK, "error", TEXT_LENGTH, id="ack-error"),
    pytest.param(Channel.RELEASE, "version", LABEL_LENGTH, id="release-version"),
    pytest.param(Channel.RELEASE, "url", URL_LENGTH, id="release-url"),
    pytest.param(Channel.RELEASE, "signature", SIGNATURE_LENGTH, id="release-signature"),
    pytest.param(Channel.RELEASE, "window", LABEL_LENGTH, id="release-window"),
    pytest.param(Channel.CMD, "id", ID_LENGTH, id="cmd-id"),
    pytest.param(Channel.CMD, "name", ID_LENGTH, id="cmd-name"),
]

#: Every free-form object a device receives.
OBJECT_FIELDS = [
    pytest.param(Channel.CONFIG, "doc", id="config-doc"),
    pytest.param(Channel.CMD, "args", id="cmd-args"),
]

#: Every identifier or label a device receives: a control character (NUL first) is refused.
NO_CONTROL_FIELDS = [
    pytest.param(Channel.RELEASE, "version", id="release-version"),
    pytest.param(Channel.RELEASE, "url", id="release-url"),
    pytest.param(Channel.RELEASE, "window", id="release-window"),
    pytest.param(Channel.CMD, "id", id="cmd-id"),
    pytest.param(Channel.CMD, "name", id="cmd-name"),
]


def _decode(channel: Channel, raw: dict[str, Any]) -> Message:
    return decode(device_topic("store-042-reg-1", channel), json.dumps(raw).encode()).message


def _with(channel: Channel, field: str, value: object) -> dict[str, Any]:
    return {**VALID[channel], field: value}


# -- integers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("channel", "field", "low"), INT_FIELDS)
@settings(derandomize=True, max_examples=40)
@given(value=st.integers(INT64_MAX + 1, 2**200))
def test_an_integer_past_a_64_bit_column_is_malformed(
    channel: Channel, field: str, low: int, value: int
) -> None:
    with pytest.raises(MalformedMessage, match=f"invalid at {field}"):
        _decode(channel, _with(channel, field, value))


@pytest.mark.parametrize(("channel", "field", "low"), INT_FIELDS)
@settings(derandomize=True, max_examples=40)
@given(data=st.data())
def test_every_integer_in_range_decodes(
    channel: Channel, field: str, low: int, data: st.DataObject
) -> None:
    value = data.draw(st.integers(low, INT64_MAX) | st.sampled_from([low, INT64_MAX]))

    message = _decode(channel, _with(channel, field, value))

    assert getattr(message, field) == value


@pytest.mark.parametrize(("channel", "field", "low"), INT_FIELDS)
@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param("5", id="string"),
        pytest.param(5.0, id="float"),
        pytest.param(True, id="bool"),
        pytest.param(-1, id="negative"),
        pytest.param(INT64_MIN - 1, id="below-int64"),
    ],
)
def test_an_integer_of_the_wrong_type_or_sign_is_malformed(
    channel: Channel, field: str, low: int, wrong: object
) -> None:
    with pytest.raises(MalformedMessage):
        _decode(channel, _with(channel, field, wrong))


@pytest.mark.parametrize("field", ["seq", "ts"])
@pytest.mark.parametrize("value", [INT64_MAX + 1, 2**64, 10**30])
def test_a_journal_record_past_a_64_bit_column_is_malformed(field: str, value: int) -> None:
    raw = {**VALID[Channel.JOURNAL], "records": [{**RECORD, field: value}]}

    with pytest.raises(MalformedMessage, match=f"records.0.{field}"):
        _decode(Channel.JOURNAL, raw)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(INT64_MAX + 1, id="int-past-64-bit"),
        pytest.param("1e400", id="infinity"),
        pytest.param("NaN", id="nan"),
    ],
)
def test_a_telemetry_metric_must_be_finite_and_bounded(value: object) -> None:
    text = json.dumps(VALID[Channel.TELEMETRY])[:-1] + f', "metrics": {{"m": {value}}}}}'

    with pytest.raises(MalformedMessage, match="invalid at metrics"):
        decode(device_topic("store-042-reg-1", Channel.TELEMETRY), text.encode())


# -- strings and objects a device receives -------------------------------------------------------


@pytest.mark.parametrize(("channel", "field", "longest"), STRING_FIELDS)
def test_a_string_at_its_limit_decodes_and_one_past_it_is_malformed(
    channel: Channel, field: str, longest: int
) -> None:
    assert getattr(_decode(channel, _with(channel, field, "a" * longest)), field) == "a" * longest

    with pytest.raises(MalformedMessage, match=f"invalid at {field}"):
        _decode(channel, _with(channel, field, "a" * (longest + 1)))


@pytest.mark.parametrize(("channel", "field"), NO_CONTROL_FIELDS)
@pytest.mark.parametrize("control", ["\x00", "\n", "\x1b", "\x7f"])
def test_a_control_character_in_a_name_is_malformed(
    channel: Channel, field: str, control: str
) -> None:
    with pytest.raises(MalformedMessage, match=f"invalid at {field}"):
        _decode(channel, _with(channel, field, f"a{control}b"))


def test_a_nul_in_an_acks_error_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="invalid at error"):
        _decode(Channel.JOURNAL_ACK, _with(Channel.JOURNAL_ACK, "error", "refused\x00"))


@pytest.mark.parametrize(("channel", "field"), OBJECT_FIELDS)
def test_an_object_with_too_many_keys_is_malformed(channel: Channel, field: str) -> None:
    at_limit = {f"k{n}": n for n in range(MAP_ENTRIES)}
    assert getattr(_decode(channel, _with(channel, field, at_limit)), field) == at_limit

    with pytest.raises(MalformedMessage, match=f"invalid at {field}"):
        _decode(channel, _with(channel, field, {**at_limit, "one-more": 0}))


# -- whatever arrives, what decodes is in range --------------------------------------------------

hostile_values = (
    st.integers(-(2**80), 2**80)
    | st.sampled_from([INT64_MAX, INT64_MAX + 1, INT64_MIN, -1, 0, 2**63, 2**64])
    | st.text(max_size=TEXT_LENGTH + 20)
    | st.text(st.sampled_from("a\x00\n\x7f"), max_size=5)
    | st.booleans()
    | st.none()
    | st.dictionaries(st.text(max_size=4), st.integers(), max_size=MAP_ENTRIES + 2)
)


#: The longest string each downstream field may hold once decoded (the rest are 64-hex or ids).
LONGEST = {(p.values[0], p.values[1]): p.values[2] for p in STRING_FIELDS}


def _out_of_range(message: Message) -> list[str]:
    """Every top-level value of a decoded message that no 64-bit column or field limit holds."""
    wrong = []
    for name, value in message:
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            wrong.append(f"{name}={value}")
        longest = LONGEST.get((message.channel, name), ID_LENGTH)
        if isinstance(value, str) and (len(value) > longest or "\x00" in value):
            wrong.append(f"{name}={value[:20]!r}")
        if isinstance(value, dict) and len(value) > MAP_ENTRIES:
            wrong.append(f"{name} has {len(value)} keys")
    return wrong


def _decode_or_error(channel: Channel, raw: dict[str, Any]) -> Message | ProtocolError:
    try:
        return _decode(channel, raw)
    except ProtocolError as err:
        return err


@pytest.mark.parametrize("cls", [pytest.param(cls, id=cls.schema_name) for cls in DOWNSTREAM])
@settings(derandomize=True, max_examples=300)
@given(data=st.data())
def test_a_downstream_message_either_is_refused_or_is_in_range(
    cls: type[Message], data: st.DataObject
) -> None:
    raw = dict(VALID[cls.channel])
    fields = sorted(name for name in cls.model_fields if name != "schema_")
    for field in data.draw(st.lists(st.sampled_from(fields), max_size=3)):
        raw[field] = data.draw(hostile_values)

    result = _decode_or_error(cls.channel, raw)

    assert isinstance(result, MalformedMessage) or _out_of_range(result) == []


def test_every_message_a_device_receives_is_covered() -> None:
    assert set(DOWNSTREAM) == {JournalAck, DesiredConfig, DesiredRelease, Command}
    assert {cls.channel for cls in DOWNSTREAM} == {
        Channel.JOURNAL_ACK,
        Channel.CONFIG,
        Channel.RELEASE,
        Channel.CMD,
    }
