"""The agent-register contract's lines: round trips, and every bad line refused (never a crash)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.agent.contract import (
    MAX_LINE,
    CommandReply,
    CommandRequest,
    ContractError,
    Heartbeat,
    Hello,
    ReplicationHealth,
    SalesHealth,
    decode_line,
    encode_line,
)

ids = st.text(st.characters(codec="utf-8"), min_size=1, max_size=64)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
messages = st.one_of(
    st.builds(Hello, pid=st.integers(1, 2**22), release=st.text(max_size=20)),
    st.builds(
        Heartbeat,
        ts=st.integers(0, 2**45),
        ready=st.booleans(),
        sales=st.builds(SalesHealth, committed=st.integers(0, 10**9)),
        replication=st.builds(ReplicationHealth, backlog=st.integers(0, 10**9)),
        peripherals=st.dictionaries(
            st.text(max_size=16),
            st.dictionaries(st.text(max_size=8), json_values, max_size=3),
            max_size=3,
        ),
    ),
    st.builds(
        CommandRequest,
        id=ids,
        name=ids,
        args=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    ),
    st.builds(CommandReply, id=ids, ok=st.booleans(), error=st.none() | st.text(max_size=40)),
)


@given(messages)
def test_every_message_round_trips_as_one_line(
    message: Hello | Heartbeat | CommandRequest | CommandReply,
) -> None:
    line = encode_line(message)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert decode_line(line) == message


@pytest.mark.parametrize(
    ("line", "why"),
    [
        pytest.param(b"\xff\xfe", "not JSON", id="not-utf8"),
        pytest.param(b"{", "not JSON", id="not-json"),
        pytest.param(b"[]\n", "message", id="not-an-object"),
        pytest.param(b'{"type":"reboot","v":1}\n', "type", id="unknown-type"),
        pytest.param(b'{"type":"hello","v":2,"pid":1}\n', "v", id="future-version"),
        pytest.param(b'{"type":"hello","v":1}\n', "pid", id="missing-field"),
        pytest.param(b'{"type":"hello","v":1,"pid":1,"root":true}\n', "root", id="unknown-field"),
        pytest.param(
            b'{"type":"heartbeat","v":1,"ts":"soon","ready":true}\n', "ts", id="wrong-type"
        ),
        pytest.param(b'{"type":"command","v":1,"id":"","name":"x"}\n', "id", id="empty-id"),
        pytest.param(b" " * (MAX_LINE + 1), "exceeds", id="too-long"),
    ],
)
def test_a_bad_line_is_a_contract_error(line: bytes, why: str) -> None:
    with pytest.raises(ContractError, match=why):
        decode_line(line)


def test_a_message_too_big_for_a_line_is_refused_when_encoded() -> None:
    huge = CommandReply(id="c", ok=True, result={"x": "y" * MAX_LINE})
    with pytest.raises(ContractError, match="exceeds"):
        encode_line(huge)
