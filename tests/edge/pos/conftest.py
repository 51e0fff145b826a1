"""A real register on a real ledger and pos.db in tmp_path, with the card terminal simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.checkout.payment_terminal_client import TcpPaymentTerminal
from edge.checkout.payment_terminal_sim import PaymentTerminalSimulator
from edge.ledger import Ledger
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.printer import ScreenPrinter
from edge.pos.register import Register
from edge.pos.register_db import RegisterDb
from edge.pos.store_config import DEMO_CATALOG, load_store_config

MILK = "7610200000019"  # Whole milk 1 l, 1.75, reduced rate
COFFEE = "8711000000120"  # Coffee beans 500 g, 12.90
CABLE = "5000395000253"  # USB-C cable 1 m, 14.90, standard rate


class Clock:
    """A clock the test moves by hand, so idle and lockout expiry are deterministic."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def terminal_sim() -> AsyncIterator[PaymentTerminalSimulator]:
    async with PaymentTerminalSimulator() as sim:
        yield sim


@pytest.fixture
async def register(
    tmp_path: Path, clock: Clock, terminal_sim: PaymentTerminalSimulator
) -> AsyncIterator[Register]:
    async with (
        Ledger(tmp_path / "ledger.db", register_id="1") as ledger,
        RegisterDb(tmp_path / "pos.db") as db,
    ):
        reg = Register(
            ledger=ledger,
            db=db,
            config=load_store_config(),
            catalog=load_snapshot_file(DEMO_CATALOG),
            terminal=TcpPaymentTerminal(host=terminal_sim.host, port=terminal_sim.port, timeout=5),
            printer=ScreenPrinter(),
            clock=clock,
        )
        await reg.start()
        yield reg


async def signed_in_with_shift(reg: Register, float_minor: int = 10000) -> Register:
    """Anna signed in and a shift open with a float."""
    from edge.pos.shift_desk import open_new_shift

    await reg.sign_in("E01", "1234")
    await open_new_shift(reg, float_minor)
    return reg
