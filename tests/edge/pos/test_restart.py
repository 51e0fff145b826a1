"""What must survive a restart does: the open shift, parked sales, PIN lockouts, the Z report."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge.checkout.payment_terminal_sim import PaymentTerminalSimulator
from edge.checkout.shift import CashDirection
from edge.ledger import Ledger
from edge.pos import payments, shift_desk
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.errors import EmployeeLocked, PinWrong
from edge.pos.register import Register
from edge.pos.register_db import RegisterDb
from edge.pos.store_config import DEMO_CATALOG, load_store_config
from tests.edge.pos.conftest import CABLE, MILK, Clock, signed_in_with_shift


@contextlib.asynccontextmanager
async def reopened(tmp_path: Path, clock: Clock) -> AsyncIterator[Register]:
    """The same files opened by a fresh register, as after a power cut."""
    async with (
        Ledger(tmp_path / "ledger.db", register_id="1") as ledger,
        RegisterDb(tmp_path / "pos.db") as db,
    ):
        reg = Register(
            ledger=ledger,
            db=db,
            config=load_store_config(),
            catalog=load_snapshot_file(DEMO_CATALOG),
            clock=clock,
        )
        await reg.start()
        yield reg


async def test_open_shift_and_parked_sale_survive_a_restart(
    tmp_path: Path, clock: Clock, terminal_sim: PaymentTerminalSimulator
) -> None:
    async with reopened(tmp_path, clock) as reg:
        await signed_in_with_shift(reg, 5000)
        await reg.scan(CABLE)
        await payments.start_payment(reg, cart_id=reg.cart.cart_id)
        await payments.pay_cash(reg, 1490, cart_id=reg.cart.cart_id)
        await shift_desk.move_cash(reg, CashDirection.IN, 1000, reason="change delivery")
        await reg.scan(MILK)
        await reg.scan(MILK)
        parked_id = reg.cart.cart_id
        await reg.park(cart_id=parked_id)
        expected = reg.shift.expected_cash_minor if reg.shift else None
    async with reopened(tmp_path, clock) as reg:
        assert reg.shift is not None
        assert reg.shift.sales_count == 1
        assert reg.shift.expected_cash_minor == expected == 5000 + 1490 + 1000
        assert [p.cart_id for p in reg.parked] == [parked_id]
        await reg.sign_in("E01", "1234")
        await reg.resume(parked_id, cart_id=reg.cart.cart_id)
        assert [line.name for line in reg.cart.open_lines] == ["Whole milk 1 l"] * 2


async def test_lockout_survives_a_restart_and_expires(tmp_path: Path, clock: Clock) -> None:
    async with reopened(tmp_path, clock) as reg:
        for left in (4, 3, 2, 1):
            with pytest.raises(PinWrong) as wrong:
                await reg.sign_in("E01", "0000")
            assert wrong.value.attempts_left == left
        with pytest.raises(EmployeeLocked):
            await reg.sign_in("E01", "0000")
    async with reopened(tmp_path, clock) as reg:
        with pytest.raises(EmployeeLocked):
            await reg.sign_in("E01", "1234")
        clock.advance(minutes=16)
        assert (await reg.sign_in("E01", "1234")).id == "E01"


async def test_a_close_interrupted_before_the_z_report_gets_it_at_start(
    tmp_path: Path, clock: Clock
) -> None:
    async with reopened(tmp_path, clock) as reg:
        await signed_in_with_shift(reg, 2000)
        shift = reg.shift
        assert shift is not None
        closed, _ = shift.close(counted_cash_minor=1900, by="E01", at=clock())
        await reg.books.book(closed)  # the power goes before report.z is written
    async with reopened(tmp_path, clock) as reg:
        assert reg.shift is None
        last = json.loads((await reg.ledger.read_records(reg.ledger.last_seq, 1))[0].record)
        assert last["kind"] == "report.z"
        assert last["body"]["variance_minor"] == -100
        assert last["body"]["receipt_no"] == 1
