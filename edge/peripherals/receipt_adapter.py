"""The register's printer seam (``edge.pos.printer.ReceiptPrinter``) on the hub's ESC/POS queue.

Why an adapter: the register hands over finished receipt *text* and must never wait for paper;
the hub owns a durable queue of ESC/POS bytes. :class:`HubReceiptPrinter` turns the text into a
job (the text, a QR code of the receipt and a cut) and returns as soon as the job is stored, so
a sale commits instantly whatever the printer is doing. It also reports the printer's
``DeviceHealth`` (``PrinterWithHealth``) so the kiosk shows "out of paper".

:meth:`HubReceiptPrinter.print_sale` is the richer path: it maps the domain ``Sale`` (lines,
discounts, tax rows, tenders, change) into the typed
:class:`~edge.peripherals.printer.receipt.Receipt` for the proper ESC/POS layout (store name in
double size, bold total). Both paths put the same QR code on paper, ``SF1:{register}:{number}``
(:func:`receipt_code` / :func:`parse_receipt_code`), and both file the job under the same
reference, so a reprint finds either. :func:`receipt_png` turns any job back into a picture of
the paper for the kiosk or console.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from decimal import Decimal

from edge.checkout.money import Currency, from_minor
from edge.checkout.sale import Sale
from edge.checkout.tax import PricingMode
from edge.checkout.tenders import Tender as SaleTender
from edge.checkout.tenders import TenderKind
from edge.peripherals.health import DeviceHealth
from edge.peripherals.hub import NotConfiguredError, PeripheralHub
from edge.peripherals.printer.layout import render_text
from edge.peripherals.printer.preview import interpret
from edge.peripherals.printer.queue import PrintJob
from edge.peripherals.printer.receipt import Discount, Receipt, ReceiptLine, TaxRow, Tender
from edge.peripherals.printer.settings import PaperSettings

_CODE = re.compile(r"^SF1:([^:]+):(\d+)$")


def receipt_ref(receipt_no: int) -> str:
    """The print queue reference of a receipt (what a reprint asks for)."""
    return f"{receipt_no:06d}"


def receipt_code(register_id: str, receipt_no: int) -> str:
    """What the receipt's QR code holds; the same as ``Receipt.code_payload``."""
    return f"SF1:{register_id}:{receipt_ref(receipt_no)}"


def parse_receipt_code(text: str) -> tuple[str, int] | None:
    """(register id, receipt number) from a scanned receipt QR code, or None if it is not one."""
    match = _CODE.fullmatch(text.strip())
    return None if match is None else (match[1], int(match[2]))


def render_text_receipt(
    text: str, *, code: str, paper: PaperSettings, link: str | None = None
) -> bytes:
    """ESC/POS for receipt text as the register laid it out, then the QR code and a cut.

    Each line goes through the printer's profile (what it cannot print is replaced with the same
    width) and is cut to the paper's columns, so even text laid out wider never wraps.
    ``link``: the customer's digital receipt link, printed as a QR code too.
    """
    return render_text(text, paper=paper, qr_payload=code, link_qr=link)


def _tender_label(tender: SaleTender) -> str:
    if tender.kind is TenderKind.CARD:
        return f"Card {tender.scheme or ''} ****{tender.last4 or ''}".replace("  ", " ")
    return "Cash"


def receipt_from_sale(
    sale: Sale,
    *,
    store_name: str,
    header_lines: Sequence[str] = (),
    footer_lines: Sequence[str] = ("Thank you!",),
    reprint: bool = False,
    cashier_name: str | None = None,
) -> Receipt:
    """The typed receipt of a completed sale; every figure comes from the sale as journaled.

    ``cashier_name`` is the employee's display name (without it, the journaled cashier id).

    The typed layout prints lines, then adjustment rows, then the total, so the rows that take
    the line amounts to what was paid go between them: line and basket discounts, tax added
    at the till (exclusive pricing) and cash rounding (as negative "discounts", printed ``+``).
    """
    money = Currency(sale.currency, sale.exponent)

    def amount(minor: int) -> Decimal:
        return from_minor(minor, money)

    adjustments = [
        Discount(description="Discounts", amount=amount(sale.line_discount_minor))
        if sale.line_discount_minor
        else None,
        Discount(description="Basket discount", amount=amount(sale.basket_discount_minor))
        if sale.basket_discount_minor
        else None,
        Discount(description="Tax", amount=-amount(sale.tax_minor))
        if sale.pricing is PricingMode.EXCLUSIVE and sale.tax_minor
        else None,
        Discount(description="Cash rounding", amount=-amount(sale.rounding_minor))
        if sale.rounding_minor
        else None,
    ]
    return Receipt(
        store_name=store_name,
        header_lines=tuple(header_lines),
        register=sale.register_id,
        receipt_number=receipt_ref(sale.receipt_number),
        issued_at=sale.completed_at,
        cashier=cashier_name or sale.cashier_id,
        lines=tuple(
            ReceiptLine(
                description=line.name,
                quantity=line.quantity,
                unit_price=amount(line.unit_price_minor),
                amount=amount(line.gross_minor),
            )
            for line in sale.lines
        ),
        discounts=tuple(a for a in adjustments if a is not None),
        total=amount(sale.paid_minor),
        tax_rows=tuple(
            TaxRow(
                label="/".join(row.codes),
                rate=row.rate * 100,
                net=amount(row.net_minor),
                tax=amount(row.tax_minor),
            )
            for row in sale.tax_rows
        ),
        tenders=tuple(
            Tender(kind=_tender_label(t), amount=amount(t.received_minor)) for t in sale.tenders
        ),
        change=amount(sale.change_minor),
        currency=sale.currency,
        exponent=sale.exponent,
        footer_lines=tuple(footer_lines),
        reprint=reprint,
    )


def receipt_png(job: PrintJob, *, paper: PaperSettings | None = None) -> bytes:
    """A PNG of what ``job`` puts on paper (for the kiosk's and the console's receipt view)."""
    paper = paper or PaperSettings()
    image = interpret(job.payload, paper).to_png()
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class HubReceiptPrinter:
    """``ReceiptPrinter`` + ``PrinterWithHealth`` for the register, backed by the hub."""

    def __init__(
        self,
        *,
        hub: PeripheralHub,
        register_id: str,
        store_name: str = "",
        header_lines: Sequence[str] = (),
        footer_lines: Sequence[str] = ("Thank you!",),
    ) -> None:
        self.hub = hub
        self.register_id = register_id
        self.store_name = store_name
        self.header_lines = tuple(header_lines)
        self.footer_lines = tuple(footer_lines)
        self._missing = DeviceHealth(device="receipt-printer", kind="printer")
        self._missing.error = "no receipt printer configured"

    @property
    def columns(self) -> int:
        """Characters per line of the loaded paper: the width the register lays receipts out to."""
        return self.hub.paper.columns

    @property
    def health(self) -> DeviceHealth:
        """The printer's health (paper, cover, connection) right now."""
        return self.hub.printer.health if self.hub.printer is not None else self._missing

    async def print_receipt(self, text: str, *, receipt_no: int, link: str | None = None) -> None:
        """Queue the register's receipt text; returns once the job is stored, never waits."""
        await self.submit_text(text, receipt_no=receipt_no, link=link)

    async def submit_text(self, text: str, *, receipt_no: int, link: str | None = None) -> int:
        """:meth:`print_receipt` that returns the print job id."""
        queue = self.hub.print_queue
        if queue is None:
            raise NotConfiguredError("receipt printer")
        payload = render_text_receipt(
            text, code=receipt_code(self.register_id, receipt_no), paper=self.hub.paper, link=link
        )
        return await queue.submit(kind="receipt", ref=receipt_ref(receipt_no), payload=payload)

    async def print_sale(self, sale: Sale, *, cashier_name: str | None = None) -> int:
        """Queue the typed ESC/POS layout of a completed sale; returns the print job id."""
        receipt = receipt_from_sale(
            sale,
            store_name=self.store_name,
            header_lines=self.header_lines,
            footer_lines=self.footer_lines,
            cashier_name=cashier_name,
        )
        return await self.hub.require_printer().print_receipt(receipt)

    async def reprint(self, receipt_no: int) -> int | None:
        """Print the last job of this receipt again; None when it was never printed here."""
        return await self.hub.require_printer().reprint(receipt_ref(receipt_no))

    async def receipt_image(self, receipt_no: int) -> bytes | None:
        """PNG of the receipt's last print job, or None."""
        queue = self.hub.print_queue
        job = None if queue is None else await queue.last_for(receipt_ref(receipt_no))
        return None if job is None else receipt_png(job, paper=self.hub.paper)
