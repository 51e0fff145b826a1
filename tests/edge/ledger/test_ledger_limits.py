"""The ledger under numbers from outside and sales the cloud could not store.

A seq that came from a message (an ack's ``hwm``) may be anything a 64-bit signed column cannot
hold; SQLite's bind raises ``OverflowError`` for it, which used to stop the register. And a sale
whose body the cloud would refuse must be refused here, before it is committed, not after it has
blocked replication.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.ledger import InvalidSale, Ledger, SaleDraft, SaleLine, Tender
from protocols.chain import GENESIS

PEN = SaleLine("4006381333931", "Stabilo pen", Decimal(2), 129, 258)
HUGE = [
    pytest.param(2**63, id="2^63"),
    pytest.param(2**64, id="2^64"),
    pytest.param(10**40, id="10^40"),
]


def _draft(sale_id: str = "sale-1", *, currency: str = "EUR") -> SaleDraft:
    return SaleDraft(sale_id, currency, (PEN,), (Tender("card", 258, "T00000001"),))


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    async with Ledger(tmp_path / "ledger.db", register_id="1") as opened:
        for n in range(3):
            await opened.record_sale(_draft(f"sale-{n}"))
        yield opened


@pytest.mark.parametrize("seq", HUGE)
async def test_hash_at_a_seq_past_64_bits_is_none(ledger: Ledger, seq: int) -> None:
    assert await ledger.hash_at(seq) is None


@pytest.mark.parametrize("seq", HUGE)
async def test_reading_from_a_seq_past_64_bits_reads_nothing(ledger: Ledger, seq: int) -> None:
    assert await ledger.read_records(seq, 10) == []


@pytest.mark.parametrize("seq", HUGE)
async def test_an_ack_mark_past_64_bits_is_capped_at_the_head(ledger: Ledger, seq: int) -> None:
    assert await ledger.mark_acked(seq) is True

    assert ledger.acked_seq == ledger.last_seq == 3
    assert await ledger.mark_acked(seq) is False


@settings(
    derandomize=True, max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seq=st.integers(-(2**70), -1) | st.integers(4, 2**70))
async def test_any_seq_outside_the_journal_has_no_hash(ledger: Ledger, seq: int) -> None:
    assert await ledger.hash_at(seq) is None


async def test_a_seq_inside_the_journal_has_its_hash(ledger: Ledger) -> None:
    records = await ledger.read_records(1, 10)

    assert [await ledger.hash_at(seq) for seq in range(4)] == [GENESIS] + [r.hash for r in records]


@pytest.mark.parametrize(
    "currency",
    [pytest.param("EURO", id="four-letters"), pytest.param("eur", id="lower-case")],
)
async def test_a_sale_the_cloud_could_not_store_is_refused_before_anything_is_committed(
    ledger: Ledger, tmp_path: Path, currency: str
) -> None:
    with pytest.raises(InvalidSale, match="currency: String should match"):
        await ledger.record_sale(_draft("sale-bad", currency=currency))

    after = await ledger.record_sale(_draft("sale-after"))
    assert (after.seq, after.receipt_no) == (4, 4)  # neither a seq nor a receipt number was used
    conn = sqlite3.connect(tmp_path / "ledger.db")
    try:
        assert conn.execute("SELECT count(*) FROM sales WHERE sale_id = 'sale-bad'").fetchone() == (
            0,
        )
    finally:
        conn.close()


async def test_a_sale_id_longer_than_the_clouds_column_is_refused(ledger: Ledger) -> None:
    with pytest.raises(InvalidSale, match="sale_id: String should have at most 64 characters"):
        await ledger.record_sale(_draft("s" * 65))
