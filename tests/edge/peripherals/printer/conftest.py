"""Shared printer fixtures: a sample sale's receipt, and the simulated network printer."""

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from edge.peripherals.printer.receipt import Discount, Receipt, ReceiptLine, TaxRow, Tender
from edge.peripherals.printer.simulator import PrinterSimulator

ARTIFACTS = Path(__file__).resolve().parents[4] / "artifacts"


@pytest.fixture
def receipt() -> Receipt:
    return Receipt(
        store_name="Corner Shop",
        header_lines=("1 Main Street", "VAT GB123456789"),
        register="R1",
        receipt_number="000123",
        issued_at=datetime(2026, 11, 21, 10, 0),
        cashier="Ana",
        lines=(
            ReceiptLine(
                description="Coffee beans 1kg",
                quantity=Decimal(2),
                unit_price=Decimal("12.99"),
                amount=Decimal("25.98"),
            ),
            ReceiptLine(
                description="Oat milk",
                quantity=Decimal(1),
                unit_price=Decimal("1.10"),
                amount=Decimal("1.10"),
            ),
        ),
        discounts=(Discount(description="Loyalty", amount=Decimal("1.00")),),
        total=Decimal("26.08"),
        tax_rows=(
            TaxRow(label="VAT", rate=Decimal(20), net=Decimal("21.73"), tax=Decimal("4.35")),
        ),
        tenders=(Tender(kind="Cash", amount=Decimal("30.00")),),
        change=Decimal("3.92"),
        footer_lines=("Thank you!",),
    )


@pytest.fixture
async def printer_sim() -> AsyncIterator[PrinterSimulator]:
    async with PrinterSimulator() as sim:
        yield sim
