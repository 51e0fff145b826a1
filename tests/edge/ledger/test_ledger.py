"""The appliance ledger on a real SQLite file: a sale and its journal record commit together."""

import itertools
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.ledger import (
    CommittedSale,
    InvalidSale,
    Ledger,
    LedgerCorrupt,
    LedgerError,
    SaleDraft,
    SaleLine,
    StoredRecord,
    Tender,
)
from protocols.chain import GENESIS, verify_link

REGISTER = "reg-1"
T0 = 1_700_000_000_000
PEN = SaleLine("4006381333931", "Stabilo pen", Decimal(2), 129, 258)
COLA = SaleLine("5000112637922", "Cola 0.5 l", Decimal(1), 189, 189)


def _clock() -> Callable[[], int]:
    return itertools.count(T0, 1000).__next__


def _draft(
    sale_id: str = "sale-1",
    *,
    lines: tuple[SaleLine, ...] = (PEN,),
    tenders: tuple[Tender, ...] = (Tender("card", 258, "T00000001"),),
    extra: dict[str, object] | None = None,
) -> SaleDraft:
    return SaleDraft(sale_id, "EUR", lines, tenders, extra or {})


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read through a second, independent connection: what is on disk, not in the ledger object."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _execute(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(sql)
    finally:
        conn.close()


def _body(record: StoredRecord) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(record.record)["body"]
    return body


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
async def ledger(path: Path) -> AsyncIterator[Ledger]:
    async with Ledger(path, register_id=REGISTER, clock=_clock()) as opened:
        yield opened


# -- durability settings ------------------------------------------------------------------------


async def test_journal_mode_is_wal_on_disk(ledger: Ledger, path: Path) -> None:
    assert _rows(path, "PRAGMA journal_mode") == [("wal",)]


async def test_synchronous_is_full_on_the_ledgers_connection(ledger: Ledger) -> None:
    row = await ledger._call(lambda c: c.execute("PRAGMA synchronous").fetchone())

    assert tuple(row) == (2,)


async def test_foreign_keys_are_enforced_on_the_ledgers_connection(ledger: Ledger) -> None:
    row = await ledger._call(lambda c: c.execute("PRAGMA foreign_keys").fetchone())

    assert tuple(row) == (1,)


# -- a sale and its journal record ---------------------------------------------------------------


async def test_sale_and_journal_record_commit_together(ledger: Ledger, path: Path) -> None:
    draft = _draft(lines=(PEN, COLA), tenders=(Tender("cash", 500),), extra={"shift_id": "shift-7"})

    sale = await ledger.record_sale(draft)

    assert sale == CommittedSale("sale-1", 1, 1, T0, 447, 53, replayed=False)
    assert (ledger.last_seq, ledger.backlog) == (1, 1)
    assert _rows(
        path,
        "SELECT sale_id, receipt_no, journal_seq, currency, total_minor,"
        " tendered_minor, change_minor, ts FROM sales",
    ) == [("sale-1", 1, 1, "EUR", 447, 500, 53, T0)]
    assert _rows(path, "SELECT * FROM sale_lines ORDER BY line_no") == [
        ("sale-1", 1, "4006381333931", "Stabilo pen", "2", 129, 258),
        ("sale-1", 2, "5000112637922", "Cola 0.5 l", "1", 189, 189),
    ]
    assert _rows(path, "SELECT * FROM sale_tenders") == [("sale-1", 1, "cash", 500, None)]
    assert _rows(path, "SELECT seq, kind, ts FROM journal") == [(1, "sale.completed", T0)]


async def test_journal_body_matches_the_sale(ledger: Ledger) -> None:
    draft = _draft(
        lines=(PEN, COLA),
        tenders=(Tender("cash", 200), Tender("card", 247, "T00000042")),
    )

    await ledger.record_sale(draft)
    [record] = await ledger.read_records(1, 10)

    assert _body(record) == {
        "sale_id": "sale-1",
        "register_id": REGISTER,
        "receipt_no": 1,
        "currency": "EUR",
        "total_minor": 447,
        "tendered_minor": 447,
        "change_minor": 0,
        "lines": [
            {
                "sku": "4006381333931",
                "description": "Stabilo pen",
                "quantity": "2",
                "unit_price_minor": 129,
                "amount_minor": 258,
            },
            {
                "sku": "5000112637922",
                "description": "Cola 0.5 l",
                "quantity": "1",
                "unit_price_minor": 189,
                "amount_minor": 189,
            },
        ],
        "tenders": [
            {"kind": "cash", "amount_minor": 200, "reference": None},
            {"kind": "card", "amount_minor": 247, "reference": "T00000042"},
        ],
    }


async def test_stored_record_is_the_chained_wire_form(ledger: Ledger) -> None:
    await ledger.record_sale(_draft())
    [record] = await ledger.read_records(1, 1)

    wire = json.loads(record.record)

    assert wire["seq"] == record.seq == 1
    assert wire["ts"] == record.ts == T0
    assert wire["hash"] == record.hash == ledger.last_hash
    assert wire["prev_hash"] == GENESIS
    assert verify_link(
        prev_hash=GENESIS,
        seq=1,
        kind="sale.completed",
        ts=T0,
        body=wire["body"],
        claimed=record.hash,
    )


async def test_seq_and_receipt_numbers_are_gap_free(ledger: Ledger) -> None:
    sales = []
    for n in range(1, 6):
        sales.append(await ledger.record_sale(_draft(f"sale-{n}")))
        await ledger.append_event("drawer.opened", {"n": n})

    assert [s.seq for s in sales] == [1, 3, 5, 7, 9]
    assert [s.receipt_no for s in sales] == [1, 2, 3, 4, 5]
    assert [r.seq for r in await ledger.read_records(1, 100)] == list(range(1, 11))


async def test_receipt_numbers_are_per_register(path: Path) -> None:
    async with Ledger(path, register_id="reg-1", clock=_clock()) as first:
        await first.record_sale(_draft("sale-1"))
        await first.record_sale(_draft("sale-2"))
    async with Ledger(path, register_id="reg-2", clock=_clock()) as second:
        other = await second.record_sale(_draft("sale-3"))
    async with Ledger(path, register_id="reg-1", clock=_clock()) as again:
        back = await again.record_sale(_draft("sale-4"))

    assert [(s.receipt_no, s.seq) for s in (other, back)] == [(1, 3), (3, 4)]
    assert _rows(path, "SELECT register_id, receipt_no FROM sales ORDER BY journal_seq") == [
        ("reg-1", 1),
        ("reg-1", 2),
        ("reg-2", 1),
        ("reg-1", 3),
    ]


async def test_extra_sits_beside_the_sales_own_fields(ledger: Ledger) -> None:
    await ledger.record_sale(_draft(extra={"shift_id": "shift-7", "note": ["a", 1, None]}))
    [record] = await ledger.read_records(1, 1)

    assert _body(record)["shift_id"] == "shift-7"
    assert _body(record)["note"] == ["a", 1, None]
    assert _body(record)["total_minor"] == 258


# -- idempotency ---------------------------------------------------------------------------------


async def test_same_sale_id_twice_is_one_sale(ledger: Ledger, path: Path) -> None:
    first = await ledger.record_sale(_draft())
    ledger.changed.clear()

    second = await ledger.record_sale(_draft())

    assert second == CommittedSale("sale-1", 1, 1, T0, 258, 0, replayed=True)
    assert first.replayed is False
    assert not ledger.changed.is_set()
    assert ledger.last_seq == 1
    assert _rows(path, "SELECT count(*) FROM journal") == [(1,)]
    assert await ledger.sale_ids() == {"sale-1"}


async def test_replay_answers_with_the_first_sale(ledger: Ledger) -> None:
    await ledger.record_sale(_draft())

    again = await ledger.record_sale(_draft(lines=(PEN, COLA), tenders=(Tender("cash", 500),)))

    assert (again.total_minor, again.change_minor, again.replayed) == (258, 0, True)
    assert ledger.last_seq == 1


async def test_replay_after_reopen(path: Path) -> None:
    async with Ledger(path, register_id=REGISTER, clock=_clock()) as ledger:
        await ledger.record_sale(_draft())

    async with Ledger(path, register_id=REGISTER, clock=_clock()) as reopened:
        again = await reopened.record_sale(_draft())

        assert (again.seq, again.receipt_no, again.replayed) == (1, 1, True)
        assert reopened.last_seq == 1


# -- refused sales -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "draft",
    [
        pytest.param(_draft(lines=()), id="no-lines"),
        pytest.param(
            _draft(lines=(SaleLine("1", "x", Decimal(0), 129, 0),), tenders=()), id="zero-quantity"
        ),
        pytest.param(
            _draft(lines=(SaleLine("1", "x", 2, 129, 258),)),  # type: ignore[arg-type]
            id="int-quantity",
        ),
        pytest.param(
            _draft(lines=(SaleLine("1", "x", 1.5, 100, 150),)),  # type: ignore[arg-type]
            id="float-quantity",
        ),
        pytest.param(
            _draft(lines=(SaleLine("1", "x", Decimal(2), 129.0, 258),)),  # type: ignore[arg-type]
            id="float-unit-price",
        ),
        pytest.param(
            _draft(lines=(SaleLine("1", "x", Decimal(2), 129, 258.0),)),  # type: ignore[arg-type]
            id="float-amount",
        ),
        pytest.param(
            _draft(lines=(SaleLine("1", "x", Decimal(1), True, True),), tenders=()),
            id="bool-money",
        ),
        pytest.param(_draft(tenders=(Tender("card", 257, "T1"),)), id="tender-short"),
        pytest.param(_draft(tenders=()), id="no-tender"),
        pytest.param(_draft(tenders=(Tender("card", 300, "T1"),)), id="change-without-cash"),
        pytest.param(
            _draft(tenders=(Tender("card", 258, "T1"), Tender("voucher", 42))),
            id="change-against-voucher",
        ),
        pytest.param(
            _draft(tenders=(Tender("card", 258, "T1"), Tender("cash", 0))), id="zero-tender"
        ),
        pytest.param(
            _draft(tenders=(Tender("cash", 300), Tender("cash", -42))), id="negative-tender"
        ),
        pytest.param(
            _draft(tenders=(Tender("cash", 258.0),)),  # type: ignore[arg-type]
            id="float-tender",
        ),
        pytest.param(_draft(extra={"tip": 1.5}), id="float-in-extra"),
        pytest.param(_draft(extra={"tip": Decimal("1.50")}), id="decimal-in-extra"),
        pytest.param(_draft(extra={"blob": b"x"}), id="bytes-in-extra"),
        pytest.param(_draft(extra={"total_minor": 0}), id="extra-redefines-total"),
        pytest.param(_draft(extra={"sale_id": "other"}), id="extra-redefines-sale-id"),
        pytest.param(_draft(extra={"checkout": {}}), id="extra-takes-checkout"),
    ],
)
async def test_invalid_sale_writes_nothing(ledger: Ledger, path: Path, draft: SaleDraft) -> None:
    await ledger.record_sale(_draft("before"))
    head = (ledger.last_seq, ledger.last_hash)

    with pytest.raises(InvalidSale):
        await ledger.record_sale(draft)
    head_after_refusal = (ledger.last_seq, ledger.last_hash)
    after = await ledger.record_sale(_draft("after"))

    assert head_after_refusal == head
    assert (after.seq, after.receipt_no) == (2, 2)
    assert _rows(path, "SELECT sale_id FROM sales ORDER BY journal_seq") == [
        ("before",),
        ("after",),
    ]
    assert _rows(path, "SELECT count(*) FROM sale_lines") == [(2,)]


class FailingClock:
    """A clock that fails once on demand: a fault inside the write transaction."""

    def __init__(self) -> None:
        self.now = itertools.count(T0, 1000)
        self.fail_next = False

    def __call__(self) -> int:
        if self.fail_next:
            self.fail_next = False
            raise OSError("clock unavailable")
        return next(self.now)


async def test_a_fault_inside_the_transaction_rolls_everything_back(path: Path) -> None:
    clock = FailingClock()
    async with Ledger(path, register_id=REGISTER, clock=clock) as ledger:
        await ledger.record_sale(_draft("before"))
        clock.fail_next = True

        with pytest.raises(OSError, match="clock unavailable"):
            await ledger.record_sale(_draft("failed"))
        after = await ledger.record_sale(_draft("after"))

        assert (after.seq, after.receipt_no) == (2, 2)
        assert await ledger.sale_ids() == {"before", "after"}
        assert await ledger.verify_chain() == 2


# -- events --------------------------------------------------------------------------------------


async def test_append_event_commits_a_journal_record(ledger: Ledger) -> None:
    ledger.changed.clear()

    seq = await ledger.append_event("drawer.opened", {"by": "staff-3", "reason": "float"})
    [record] = await ledger.read_records(1, 10)

    assert seq == record.seq == ledger.last_seq == 1
    assert ledger.changed.is_set()
    assert json.loads(record.record)["kind"] == "drawer.opened"
    assert _body(record) == {"by": "staff-3", "reason": "float"}
    assert await ledger.sale_ids() == set()


async def test_numbered_events_share_the_registers_receipt_numbers(ledger: Ledger) -> None:
    first = await ledger.record_sale(_draft("sale-1"))
    numbered = await ledger.append_numbered_event(
        "sale.returned", lambda number: {"receipt_no": number, "of": "sale-1"}
    )
    second = await ledger.record_sale(_draft("sale-2"))
    [_, record, _] = await ledger.read_records(1, 3)

    assert (first.receipt_no, numbered, second.receipt_no) == (1, (2, 2), 3)
    assert json.loads(record.record)["kind"] == "sale.returned"
    assert _body(record) == {"receipt_no": 2, "of": "sale-1"}


def _refuse(number: int) -> dict[str, object]:
    raise ValueError(f"cannot build record {number}")


async def test_a_numbered_event_whose_build_fails_uses_no_number(ledger: Ledger) -> None:
    await ledger.append_numbered_event("report.x", lambda number: {"n": number})
    ledger.changed.clear()

    with pytest.raises(ValueError, match="cannot build record 2"):
        await ledger.append_numbered_event("report.x", _refuse)
    head_after_failure = (ledger.last_seq, ledger.changed.is_set())
    after = await ledger.append_numbered_event("report.z", lambda number: {"n": number})

    assert head_after_failure == (1, False)
    assert after == (2, 2)
    assert await ledger.verify_chain() == 2


async def test_sale_detail_gets_the_receipt_number_and_sits_under_checkout(ledger: Ledger) -> None:
    await ledger.record_sale(_draft("sale-1"))

    sale = await ledger.record_sale(
        _draft("sale-2"), detail=lambda receipt_no: {"receipt": f"R-{receipt_no}", "vat": "19"}
    )
    [record] = await ledger.read_records(sale.seq, 1)

    assert sale.receipt_no == 2
    assert _body(record)["checkout"] == {"receipt": "R-2", "vat": "19"}
    assert _body(record)["total_minor"] == 258


async def test_a_sale_whose_detail_fails_writes_nothing(ledger: Ledger, path: Path) -> None:
    with pytest.raises(ValueError, match="cannot build record 1"):
        await ledger.record_sale(_draft("sale-1"), detail=_refuse)
    after = await ledger.record_sale(_draft("sale-2"))

    assert (after.seq, after.receipt_no) == (1, 1)
    assert _rows(path, "SELECT sale_id FROM sales") == [("sale-2",)]


async def test_a_replayed_sale_does_not_build_its_detail_again(ledger: Ledger) -> None:
    calls: list[int] = []

    def detail(receipt_no: int) -> dict[str, object]:
        calls.append(receipt_no)
        return {"receipt_no_seen": receipt_no}

    await ledger.record_sale(_draft(), detail=detail)
    again = await ledger.record_sale(_draft(), detail=detail)

    assert again.replayed
    assert calls == [1]


# -- reading the journal -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_seq", "limit", "expected"),
    [
        pytest.param(1, 3, [1, 2, 3], id="first-page"),
        pytest.param(4, 100, [4, 5, 6, 7, 8, 9, 10], id="rest"),
        pytest.param(10, 1, [10], id="last"),
        pytest.param(11, 5, [], id="past-the-head"),
        pytest.param(0, 2, [1, 2], id="from-zero"),
        pytest.param(3, 0, [], id="zero-limit"),
    ],
)
async def test_read_records_in_order_with_a_limit(
    ledger: Ledger, from_seq: int, limit: int, expected: list[int]
) -> None:
    for n in range(10):
        await ledger.append_event("count", {"n": n})

    records = await ledger.read_records(from_seq, limit)

    assert [r.seq for r in records] == expected
    assert [_body(r)["n"] for r in records] == [seq - 1 for seq in expected]


async def test_hash_at(ledger: Ledger) -> None:
    await ledger.append_event("a", {})
    await ledger.append_event("b", {})
    [first, second] = await ledger.read_records(1, 2)

    assert await ledger.hash_at(0) == GENESIS
    assert await ledger.hash_at(1) == first.hash
    assert await ledger.hash_at(2) == second.hash == ledger.last_hash
    assert await ledger.hash_at(3) is None


# -- acknowledgements ----------------------------------------------------------------------------


async def test_mark_acked_moves_forward_only(ledger: Ledger, path: Path) -> None:
    for n in range(5):
        await ledger.append_event("count", {"n": n})

    moves = [await ledger.mark_acked(hwm) for hwm in (3, 2, 3, 0)]

    assert moves == [True, False, False, False]
    assert (ledger.acked_seq, ledger.backlog) == (3, 2)
    assert _rows(path, "SELECT acked_seq FROM replication") == [(3,)]


async def test_mark_acked_is_clamped_to_the_head(ledger: Ledger, path: Path) -> None:
    for n in range(5):
        await ledger.append_event("count", {"n": n})

    await ledger.mark_acked(100)

    assert (ledger.acked_seq, ledger.backlog) == (5, 0)
    assert _rows(path, "SELECT acked_seq FROM replication") == [(5,)]


async def test_an_ack_mark_costs_no_fsync_and_sales_stay_full(ledger: Ledger, path: Path) -> None:
    """The mark commits under synchronous=NORMAL (a lost mark only resends duplicates the
    cloud ignores); the connection is back to FULL before the next sale."""
    await ledger.append_event("count", {"n": 0})
    statements: list[str] = []
    await ledger._call(lambda conn: conn.set_trace_callback(statements.append))

    await ledger.mark_acked(1)
    await ledger._call(lambda conn: conn.set_trace_callback(None))
    level = await ledger._call(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])

    update = next(i for i, sql in enumerate(statements) if sql.startswith("UPDATE replication"))
    assert statements[update - 1] == "PRAGMA synchronous=NORMAL"
    assert statements[update + 1] == "PRAGMA synchronous=FULL"
    assert level == 2  # FULL
    assert _rows(path, "SELECT acked_seq FROM replication") == [(1,)]


async def test_backlog_counts_unacknowledged_records(ledger: Ledger) -> None:
    for n in range(4):
        await ledger.append_event("count", {"n": n})
    await ledger.mark_acked(1)
    backlogs = [ledger.backlog]
    await ledger.append_event("count", {"n": 4})
    backlogs.append(ledger.backlog)
    await ledger.mark_acked(5)
    backlogs.append(ledger.backlog)

    assert backlogs == [3, 4, 0]


@settings(
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(records=st.integers(0, 8), hwms=st.lists(st.integers(-2, 12), max_size=8))
async def test_acked_seq_is_the_running_maximum(
    tmp_path: Path, records: int, hwms: list[int]
) -> None:
    async with Ledger(tmp_path / f"{uuid.uuid4()}.db", register_id=REGISTER) as ledger:
        for n in range(records):
            await ledger.append_event("count", {"n": n})
        seen = []
        for hwm in hwms:
            await ledger.mark_acked(hwm)
            seen.append(ledger.acked_seq)

    assert seen == [min(max([0, *hwms[: i + 1]]), records) for i in range(len(hwms))]


# -- chain checks --------------------------------------------------------------------------------


async def test_verify_chain_counts_a_good_chain(ledger: Ledger) -> None:
    for n in range(3):
        await ledger.record_sale(_draft(f"sale-{n}"))
        await ledger.append_event("drawer.opened", {"n": n})

    assert await ledger.verify_chain() == 6
    assert await ledger.integrity_check() == "ok"


async def test_verify_chain_of_an_empty_ledger(ledger: Ledger) -> None:
    assert await ledger.verify_chain() == 0


TAMPERING = [
    pytest.param(
        "UPDATE journal SET record = replace(record, '\"total_minor\":258', '\"total_minor\":1')"
        " WHERE seq = 2",
        2,
        id="body-in-record",
    ),
    pytest.param(
        "UPDATE journal SET hash = replace(hash, substr(hash, 1, 1), 'x') WHERE seq = 2",
        2,
        id="hash",
    ),
    pytest.param(f"UPDATE journal SET prev_hash = '{'1' * 64}' WHERE seq = 3", 3, id="prev-hash"),
    pytest.param("UPDATE journal SET kind = 'sale.voided' WHERE seq = 2", 2, id="kind"),
    pytest.param("UPDATE journal SET ts = ts + 1 WHERE seq = 1", 1, id="ts"),
]


@pytest.mark.parametrize(("sql", "breaks_at"), TAMPERING)
async def test_verify_chain_detects_tampering(path: Path, sql: str, breaks_at: int) -> None:
    async with Ledger(path, register_id=REGISTER, clock=_clock()) as ledger:
        for n in range(3):
            await ledger.record_sale(_draft(f"sale-{n}"))
    _execute(path, sql)

    async with Ledger(path, register_id=REGISTER) as reopened:
        with pytest.raises(LedgerCorrupt) as info:
            await reopened.verify_chain()

    assert info.value.detail == f"chain breaks at seq {breaks_at}"
    assert info.value.path == str(path)


def _in_record(seq: int, old: str, new: str) -> str:
    return f"UPDATE journal SET record = replace(record, '{old}', '{new}') WHERE seq = {seq}"


@pytest.mark.parametrize(
    ("sql", "detail"),
    [
        pytest.param(
            _in_record(2, '"kind":"sale.completed"', '"kind":"sale.voided"'),
            "chain breaks at seq 2",
            id="kind-in-record",
        ),
        pytest.param(
            _in_record(2, '"seq":2', '"seq":7'), "chain breaks at seq 2", id="seq-in-record"
        ),
        pytest.param(
            _in_record(3, f'"ts":{T0 + 2000}', f'"ts":{T0}'),
            "chain breaks at seq 3",
            id="ts-in-record",
        ),
        pytest.param(
            _in_record(1, '"prev_hash":"0', '"prev_hash":"1'),
            "chain breaks at seq 1",
            id="prev-hash-in-record",
        ),
        pytest.param(
            "UPDATE journal SET record = json_set(record, '$.hash', '"
            + "f" * 64
            + "') WHERE seq = 2",
            "chain breaks at seq 2",
            id="hash-in-record",
        ),
        pytest.param(
            "UPDATE journal SET record = '{' WHERE seq = 2", "record 2 is unreadable", id="not-json"
        ),
        pytest.param(
            "UPDATE journal SET record = json_remove(record, '$.body') WHERE seq = 2",
            "record 2 is unreadable",
            id="no-body",
        ),
        pytest.param(
            "UPDATE journal SET record = '[]' WHERE seq = 2",
            "record 2 is unreadable",
            id="not-an-object",
        ),
    ],
)
async def test_verify_chain_checks_the_wire_record_it_replicates(
    path: Path, sql: str, detail: str
) -> None:
    async with Ledger(path, register_id=REGISTER, clock=_clock()) as ledger:
        for n in range(3):
            await ledger.record_sale(_draft(f"sale-{n}"))
    _execute(path, sql)

    async with Ledger(path, register_id=REGISTER) as reopened:
        with pytest.raises(LedgerCorrupt) as info:
            await reopened.verify_chain()

    assert info.value.detail == detail


async def test_open_detects_a_missing_record(path: Path) -> None:
    async with Ledger(path, register_id=REGISTER, clock=_clock()) as ledger:
        for n in range(3):
            await ledger.append_event("count", {"n": n})
    _execute(path, "DELETE FROM journal WHERE seq = 2")
    reopened = Ledger(path, register_id=REGISTER)

    try:
        with pytest.raises(LedgerCorrupt, match="2 records but head is seq 3"):
            await reopened.open()
    finally:
        await reopened.close()  # a half-open ledger would keep its thread and hang the run


# -- reopening -----------------------------------------------------------------------------------


async def test_reopen_restores_the_head(path: Path) -> None:
    async with Ledger(path, register_id=REGISTER, clock=_clock()) as ledger:
        for n in range(3):
            await ledger.record_sale(_draft(f"sale-{n}"))
            await ledger.append_event("drawer.opened", {"n": n})
        await ledger.mark_acked(4)
        head = (ledger.last_seq, ledger.last_hash, ledger.acked_seq)

    async with Ledger(path, register_id=REGISTER, clock=_clock()) as reopened:
        restored = (reopened.last_seq, reopened.last_hash, reopened.acked_seq)
        sale = await reopened.record_sale(_draft("sale-after"))
        [record] = await reopened.read_records(7, 1)

        assert restored == head == (6, await reopened.hash_at(6), 4)
        assert (sale.seq, sale.receipt_no) == (7, 4)
        assert json.loads(record.record)["prev_hash"] == head[1]
        assert await reopened.verify_chain() == 7


async def test_a_fresh_ledger_starts_at_genesis(ledger: Ledger) -> None:
    assert (ledger.last_seq, ledger.last_hash, ledger.acked_seq, ledger.backlog) == (
        0,
        GENESIS,
        0,
        0,
    )


async def test_a_closed_ledger_refuses_work(path: Path) -> None:
    ledger = Ledger(path, register_id=REGISTER)
    await ledger.open()
    await ledger.close()
    await ledger.close()

    with pytest.raises(LedgerError, match="not open"):
        await ledger.record_sale(_draft())


# -- properties ----------------------------------------------------------------------------------

Operation = tuple[str, Any]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("sale"), st.integers(0, 5)),
        st.tuples(
            st.just("event"),
            st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=6), max_size=3),
        ),
    ),
    max_size=15,
)


async def _apply(ledger: Ledger, op: Operation) -> None:
    kind, value = op
    if kind == "sale":
        await ledger.record_sale(_draft(f"sale-{value}"))
    else:
        await ledger.append_event("note", value)


@settings(
    derandomize=True,
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=operations)
async def test_any_mix_of_sales_and_events_keeps_the_chain(
    tmp_path: Path, ops: list[Operation]
) -> None:
    sale_ids = {f"sale-{value}" for kind, value in ops if kind == "sale"}
    events = [op for op in ops if op[0] == "event"]
    async with Ledger(tmp_path / f"{uuid.uuid4()}.db", register_id=REGISTER) as ledger:
        for op in ops:
            await _apply(ledger, op)
        records = await ledger.read_records(1, 1000)
        count = await ledger.verify_chain()
        ids = await ledger.sale_ids()

    wires = [json.loads(r.record) for r in records]
    assert count == len(records) == ledger.last_seq == len(sale_ids) + len(events)
    assert [r.seq for r in records] == list(range(1, count + 1))
    assert [w["prev_hash"] for w in wires] == [GENESIS, *[r.hash for r in records]][:count]
    assert ids == sale_ids
    assert sorted(w["body"]["receipt_no"] for w in wires if w["kind"] == "sale.completed") == list(
        range(1, len(sale_ids) + 1)
    )
