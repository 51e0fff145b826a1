"""The journal hash chain: golden vectors, whole chains, and every field under the hash."""

import hashlib
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.canonical import JsonValue, canonical_bytes, canonical_text
from protocols.chain import GENESIS, envelope_bytes, hash_envelope, record_hash, verify_link
from protocols.errors import NonCanonicalValue

json_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)
bodies = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
kinds = st.text(min_size=1, max_size=20)
timestamps = st.integers(0, 2**48)


@dataclass(frozen=True)
class Link:
    prev_hash: str
    seq: int
    kind: str
    ts: int
    body: dict[str, Any]
    claimed: str


def _chain(entries: list[tuple[str, int, dict[str, Any]]]) -> list[Link]:
    links, prev = [], GENESIS
    for seq, (kind, ts, body) in enumerate(entries, start=1):
        digest = record_hash(prev_hash=prev, seq=seq, kind=kind, ts=ts, body=body)
        links.append(Link(prev, seq, kind, ts, body, digest))
        prev = digest
    return links


def _verify(link: Link) -> bool:
    return verify_link(
        prev_hash=link.prev_hash,
        seq=link.seq,
        kind=link.kind,
        ts=link.ts,
        body=link.body,
        claimed=link.claimed,
    )


SALE_BODY = {
    "total_minor": 1299,
    "lines": [{"sku": "4006381333931", "qty": "1"}],
    "currency": "EUR",
}
# The canonical form written out by hand from the documented definition, not by canonical_bytes.
SALE_CANONICAL = (
    b'{"body":{"currency":"EUR","lines":[{"qty":"1","sku":"4006381333931"}],"total_minor":1299},'
    b'"kind":"sale.completed","seq":1,"ts":1700000000000}'
)
SALE_HASH = "51fc602675754332bd809298e753ab32c292d5d202c0b3f073ffa25498b7186d"
DRAWER_CANONICAL = (
    '{"body":{"note":"Kasse geöffnet"},"kind":"drawer.opened","seq":2,"ts":1700000001000}'.encode()
)
DRAWER_HASH = "f8cb3108961d7d5da8dbcb5777b53fea6e8891407dc4e75a1ef3c9050ba3d91d"


def test_genesis_is_32_zero_bytes() -> None:
    assert bytes.fromhex(GENESIS) == bytes(32)


def test_golden_first_record_follows_genesis() -> None:
    by_hand = hashlib.sha256(bytes.fromhex(GENESIS) + SALE_CANONICAL).hexdigest()

    digest = record_hash(
        prev_hash=GENESIS, seq=1, kind="sale.completed", ts=1700000000000, body=SALE_BODY
    )

    assert digest == by_hand == SALE_HASH


def test_golden_second_record_chains_on_the_first() -> None:
    by_hand = hashlib.sha256(bytes.fromhex(SALE_HASH) + DRAWER_CANONICAL).hexdigest()

    digest = record_hash(
        prev_hash=SALE_HASH,
        seq=2,
        kind="drawer.opened",
        ts=1700000001000,
        body={"note": "Kasse geöffnet"},
    )

    assert digest == by_hand == DRAWER_HASH


@settings(derandomize=True)
@given(entries=st.lists(st.tuples(kinds, timestamps, bodies), min_size=1, max_size=12))
def test_a_chain_of_n_records_verifies(entries: list[tuple[str, int, dict[str, Any]]]) -> None:
    links = _chain(entries)

    assert all(_verify(link) for link in links)
    assert links[0].prev_hash == GENESIS
    assert [b.prev_hash for b in links[1:]] == [a.claimed for a in links[:-1]]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"seq": 3}, id="seq"),
        pytest.param({"kind": "sale.voided"}, id="kind"),
        pytest.param({"ts": 1700000000001}, id="ts"),
        pytest.param({"body": {**SALE_BODY, "total_minor": 1298}}, id="body-value"),
        pytest.param({"body": {**SALE_BODY, "note": None}}, id="body-extra-key"),
        pytest.param({"body": {"total_minor": 1299, "currency": "EUR"}}, id="body-missing-key"),
        pytest.param({"body": {**SALE_BODY, "total_minor": "1299"}}, id="body-type"),
        pytest.param({"prev_hash": "0" * 63 + "1"}, id="prev-hash"),
        pytest.param({"claimed": SALE_HASH.upper()}, id="claimed-upper-case"),
    ],
)
def test_changing_any_covered_field_breaks_the_link(change: dict[str, Any]) -> None:
    link = Link(GENESIS, 1, "sale.completed", 1700000000000, SALE_BODY, SALE_HASH)

    assert _verify(link)
    assert not _verify(replace(link, **change))


@settings(derandomize=True)
@given(
    entries=st.lists(st.tuples(kinds, timestamps, bodies), min_size=2, max_size=6),
    data=st.data(),
)
def test_a_record_cannot_be_moved_to_another_place_in_the_chain(
    entries: list[tuple[str, int, dict[str, Any]]], data: st.DataObject
) -> None:
    links = _chain(entries)
    moved = data.draw(st.integers(1, len(links) - 1))

    # Record ``moved`` presented directly after genesis with its own seq and claimed hash.
    assert not _verify(replace(links[moved], prev_hash=GENESIS))


@settings(derandomize=True)
@given(body=bodies)
def test_body_key_order_does_not_change_the_hash(body: dict[str, Any]) -> None:
    reordered = dict(reversed(list(body.items())))

    assert record_hash(prev_hash=GENESIS, seq=1, kind="k", ts=0, body=reordered) == record_hash(
        prev_hash=GENESIS, seq=1, kind="k", ts=0, body=body
    )


def test_a_float_in_the_body_is_refused() -> None:
    with pytest.raises(NonCanonicalValue, match=r"\.total"):
        record_hash(prev_hash=GENESIS, seq=1, kind="k", ts=0, body={"total": 12.99})


any_kinds = st.text(max_size=20)  # quotes, backslashes, control characters and all


@settings(derandomize=True)
@given(seq=st.integers(0, 2**63), kind=any_kinds, ts=timestamps, body=bodies)
def test_envelope_is_the_canonical_form_of_the_record(
    seq: int, kind: str, ts: int, body: dict[str, Any]
) -> None:
    envelope = envelope_bytes(seq=seq, kind=kind, ts=ts, body_text=canonical_text(body))

    assert envelope == canonical_bytes({"seq": seq, "kind": kind, "ts": ts, "body": body})


@settings(derandomize=True)
@given(seq=st.integers(1, 2**40), kind=kinds, ts=timestamps, body=bodies)
def test_record_hash_is_sha256_of_prev_and_envelope(
    seq: int, kind: str, ts: int, body: dict[str, Any]
) -> None:
    envelope = canonical_bytes({"seq": seq, "kind": kind, "ts": ts, "body": body})
    by_hand = hashlib.sha256(bytes.fromhex(SALE_HASH) + envelope).hexdigest()

    assert hash_envelope(SALE_HASH, envelope) == by_hand
    assert record_hash(prev_hash=SALE_HASH, seq=seq, kind=kind, ts=ts, body=body) == by_hand
    assert (
        record_hash(prev_hash=SALE_HASH, seq=seq, kind=kind, ts=ts, body=body, checked=False)
        == by_hand
    )
