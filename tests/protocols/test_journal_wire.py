"""Journal records stored as wire text join into exactly the batch the codec would encode."""

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.canonical import JsonValue
from protocols.chain import GENESIS, record_hash, verify_link
from protocols.codec import decode, encode
from protocols.errors import NonCanonicalValue
from protocols.journal_wire import batch_bytes, record_json
from protocols.messages import JournalBatch, JournalRecord
from protocols.topics import Channel, device_topic

TOPIC = device_topic("store-042-reg-1", Channel.JOURNAL)

json_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
bodies = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
entries = st.lists(
    st.tuples(
        st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=64),
        st.integers(0, 2**48),
        bodies,
    ),
    min_size=1,
    max_size=8,
)


def _wire_chain(
    first_seq: int, prev_hash: str, items: list[tuple[str, int, dict[str, Any]]]
) -> tuple[list[str], list[JournalRecord]]:
    wires, records, prev = [], [], prev_hash
    for seq, (kind, ts, body) in enumerate(items, start=first_seq):
        digest, wire = record_json(seq=seq, kind=kind, ts=ts, prev_hash=prev, body=body)
        wires.append(wire)
        records.append(
            JournalRecord(seq=seq, kind=kind, ts=ts, prev_hash=prev, hash=digest, body=body)
        )
        prev = digest
    return wires, records


@settings(derandomize=True, max_examples=150)
@given(
    items=entries,
    first_seq=st.integers(1, 2**40),
    prev_hash=st.just(GENESIS) | st.binary(min_size=32, max_size=32).map(bytes.hex),
    sent_at=st.integers(0, 2**48),
)
def test_joined_records_equal_the_codecs_batch_byte_for_byte(
    items: list[tuple[str, int, dict[str, Any]]], first_seq: int, prev_hash: str, sent_at: int
) -> None:
    wires, records = _wire_chain(first_seq, prev_hash, items)

    wire = batch_bytes(wires, sent_at=sent_at)

    assert wire == encode(JournalBatch(schema="sf.journal", records=records, sent_at=sent_at))
    assert decode(TOPIC, wire).message == JournalBatch(
        schema="sf.journal", records=records, sent_at=sent_at
    )


@settings(derandomize=True)
@given(items=entries)
def test_decoded_batch_verifies_as_a_chain(items: list[tuple[str, int, dict[str, Any]]]) -> None:
    wires, _ = _wire_chain(1, GENESIS, items)

    batch = decode(TOPIC, batch_bytes(wires, sent_at=0)).message

    assert isinstance(batch, JournalBatch)
    assert batch.records[0].prev_hash == GENESIS
    assert all(
        verify_link(
            prev_hash=r.prev_hash, seq=r.seq, kind=r.kind, ts=r.ts, body=r.body, claimed=r.hash
        )
        for r in batch.records
    )


def test_record_json_golden() -> None:
    body = {"total_minor": 1299, "currency": "EUR"}

    digest, wire = record_json(seq=1, kind="sale.completed", ts=5, prev_hash=GENESIS, body=body)

    assert digest == record_hash(prev_hash=GENESIS, seq=1, kind="sale.completed", ts=5, body=body)
    assert wire == (
        '{"seq":1,"kind":"sale.completed","ts":5,"prev_hash":"'
        + GENESIS
        + '","hash":"'
        + digest
        + '","body":{"total_minor":1299,"currency":"EUR"}}'
    )


def test_batch_bytes_golden() -> None:
    assert batch_bytes(['{"seq":1}', '{"seq":2}'], sent_at=7) == (
        b'{"schema":"sf.journal","v":1,"records":[{"seq":1},{"seq":2}],"sent_at":7}'
    )


@settings(derandomize=True)
@given(body=bodies)
def test_record_json_keeps_the_body_as_given(body: dict[str, Any]) -> None:
    _, wire = record_json(seq=1, kind="k", ts=0, prev_hash=GENESIS, body=body)

    parsed = json.loads(wire)

    assert list(parsed) == ["seq", "kind", "ts", "prev_hash", "hash", "body"]
    assert parsed["body"] == body


def test_record_json_refuses_a_float_body() -> None:
    with pytest.raises(NonCanonicalValue):
        record_json(seq=1, kind="k", ts=0, prev_hash=GENESIS, body={"total": 1.5})
