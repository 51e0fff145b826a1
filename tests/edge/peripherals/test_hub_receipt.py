"""A sale at the real register prints on the simulated TCP printer: total and QR read back."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from edge.checkout.payment_terminal_client import TcpPaymentTerminal
from edge.checkout.payment_terminal_sim import PaymentTerminalSimulator
from edge.checkout.sale import Sale
from edge.checkout.text_columns import columns
from edge.ledger import Ledger
from edge.peripherals.hub import PeripheralHub
from edge.peripherals.printer.preview import ImageRow, interpret
from edge.peripherals.printer.settings import PaperSettings
from edge.peripherals.receipt_adapter import (
    HubReceiptPrinter,
    parse_receipt_code,
    receipt_png,
)
from edge.peripherals.simulated_store import simulated_store
from edge.pos import payments
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.printer import fit_receipts_to_paper, printer_problem
from edge.pos.register import Register
from edge.pos.register_db import RegisterDb
from edge.pos.shift_desk import open_new_shift
from edge.pos.store_config import DEMO_CATALOG, load_store_config

from .hub_harness import RunningHub, running_hub
from .printer.conftest import ARTIFACTS

GUARD_S = 30  # only against hangs
MILK, COFFEE = "7610200000019", "8711000000120"  # 1.75 and 12.90 in the demo catalog


@contextlib.asynccontextmanager
async def running_till(
    tmp_path: Path, *, paper: PaperSettings | None = None
) -> AsyncIterator[tuple[Register, HubReceiptPrinter, RunningHub]]:
    """The real register on the simulated store's hub, composed as ``run_register`` does."""
    async with (
        PaymentTerminalSimulator() as terminal,
        Ledger(tmp_path / "ledger.db", register_id="1") as ledger,
        RegisterDb(tmp_path / "pos.db") as db,
        _hub(tmp_path, ledger=ledger, paper=paper) as run,
    ):
        printer = HubReceiptPrinter(
            hub=run.hub,
            register_id=ledger.register_id,
            store_name="demo market",
            header_lines=load_store_config().receipt_header[1:],
        )
        register = Register(
            ledger=ledger,
            db=db,
            config=fit_receipts_to_paper(load_store_config(), printer),
            catalog=load_snapshot_file(DEMO_CATALOG),
            terminal=TcpPaymentTerminal(host=terminal.host, port=terminal.port, timeout=5),
            printer=printer,
            clock=lambda: datetime(2026, 11, 21, 9, 0, tzinfo=UTC),
        )
        await register.start()
        await register.sign_in("E01", "1234")  # Anna
        await open_new_shift(register, 10000)
        yield register, printer, run


@contextlib.asynccontextmanager
async def _hub(
    tmp_path: Path, *, ledger: Ledger, paper: PaperSettings | None
) -> AsyncIterator[RunningHub]:
    if paper is None:
        async with running_hub(tmp_path, ledger=ledger) as run:
            yield run
        return
    async with simulated_store(workdir=tmp_path / "devices", retry_s=0.02) as store:
        assert store.devices.printer is not None
        printer = store.devices.printer.model_copy(update={"paper": paper})
        devices = store.devices.model_copy(update={"printer": printer})
        async with PeripheralHub(devices=devices, journal=ledger, data_dir=tmp_path) as hub:
            yield RunningHub(store=store, ledger=ledger, hub=hub)


@pytest.fixture
async def till(tmp_path: Path) -> AsyncIterator[tuple[Register, HubReceiptPrinter, RunningHub]]:
    async with running_till(tmp_path) as running:
        yield running


async def sell_for_cash(register: Register, *codes: str, cash_minor: int) -> None:
    for code in codes:
        await register.scan(code)
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    await payments.pay_cash(register, cash_minor, cart_id=cart_id)
    assert register.payment is None  # settled and booked


async def last_sale(register: Register) -> Sale:
    records = await register.ledger.read_records(1, 1000)
    body = json.loads(records[-1].record)["body"]
    return Sale.from_journal_body(body["checkout"])


async def test_sale_prints_its_receipt_with_total_and_qr(
    till: tuple[Register, HubReceiptPrinter, RunningHub],
) -> None:
    register, printer, run = till
    async with asyncio.timeout(GUARD_S):
        await sell_for_cash(register, MILK, COFFEE, cash_minor=2000)
        queue = run.hub.print_queue
        assert queue is not None
        job = await queue.last_for("000001")
        assert job is not None
        printed = await run.hub.require_printer().wait_for(job.id, lambda j: j.state == "printed")
        (paper,) = await run.store.printer.wait_for_jobs(1)
    preview = interpret(bytes(paper.data))
    image = preview.to_png(ARTIFACTS / "receipt-register-sale.png")
    total = "TOTAL CHF" + " " * 28 + "14.65"
    assert total in preview.text_lines
    assert "Change" + " " * 32 + "5.35" in preview.text_lines
    assert "Cashier Anna" in preview.text_lines  # her name, not "E01"
    assert [r.text for r in zxingcpp.read_barcodes(image)] == ["SF1:1:000001"]
    assert parse_receipt_code("SF1:1:000001") == ("1", 1)
    # the console's picture of the job is the same paper
    from_queue = Image.open(io.BytesIO(receipt_png(printed)))
    assert [r.text for r in zxingcpp.read_barcodes(from_queue)] == ["SF1:1:000001"]
    assert printer_problem(printer) is None


async def test_typed_layout_of_the_domain_sale(
    till: tuple[Register, HubReceiptPrinter, RunningHub],
) -> None:
    register, printer, run = till
    async with asyncio.timeout(GUARD_S):
        await register.scan(MILK)
        await register.set_quantity(1, Decimal(2), cart_id=register.cart.cart_id)
        await sell_for_cash(register, COFFEE, cash_minor=5000)
        sale = await last_sale(register)
        job_id = await printer.print_sale(sale, cashier_name="Anna")
        await run.hub.require_printer().wait_for(job_id, lambda j: j.state == "printed")
        _, typed = await run.store.printer.wait_for_jobs(2)
        image = await printer.receipt_image(sale.receipt_number)
    preview = interpret(bytes(typed.data))
    preview.to_png(ARTIFACTS / "receipt-register-sale-typed.png")
    assert "TOTAL CHF" + " " * 28 + "16.40" in preview.text_lines
    assert "  2 x 1.75" in preview.text_lines
    assert "Change" + " " * 31 + "33.60" in preview.text_lines
    assert any(line.startswith("B 2.6%") for line in preview.text_lines)  # tax row
    assert any(line.endswith(" Anna") for line in preview.text_lines)
    assert image is not None
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(image)))
    assert [r.text for r in decoded] == ["SF1:1:000001"]


async def test_out_of_paper_never_holds_up_the_sale(
    till: tuple[Register, HubReceiptPrinter, RunningHub],
) -> None:
    register, printer, run = till
    run.store.printer.paper = "out"
    async with asyncio.timeout(GUARD_S):
        await sell_for_cash(register, MILK, cash_minor=200)  # commits; the job only queues
        records = await register.ledger.read_records(1, 1000)
        assert json.loads(records[-1].record)["kind"] == "sale.completed"
        queue = run.hub.print_queue
        assert queue is not None
        job = await queue.last_for("000001")
        assert job is not None
        service = run.hub.require_printer()
        await service.wait_for(job.id, lambda j: j.attempts >= 1)
        assert printer_problem(printer) == "receipt-printer: out of paper"
        run.store.printer.paper = "ok"
        await service.wait_for(job.id, lambda j: j.state == "printed")
    assert printer_problem(printer) is None
    assert len(run.store.printer.printed_jobs) == 1


async def test_on_58mm_paper_the_register_lays_the_receipt_out_to_32_columns(
    tmp_path: Path,
) -> None:
    paper = PaperSettings(width_mm=58)
    async with asyncio.timeout(GUARD_S), running_till(tmp_path, paper=paper) as (register, _, run):
        assert register.config.receipt_width == 32
        await sell_for_cash(register, MILK, COFFEE, cash_minor=2000)
        (printed,) = await run.store.printer.wait_for_jobs(1)
    preview = interpret(bytes(printed.data), paper)
    preview.to_png(ARTIFACTS / "receipt-register-sale-58mm.png")
    assert "TOTAL CHF" + " " * 18 + "14.65" in preview.text_lines
    assert "-" * 32 in preview.text_lines
    assert all(columns(line) <= 32 for line in preview.text_lines)
    (qr,) = [r.image for r in preview.rows if isinstance(r, ImageRow) and r.image.height > 20]
    assert qr.width == 384
    assert [r.text for r in zxingcpp.read_barcodes(qr)] == ["SF1:1:000001"]
