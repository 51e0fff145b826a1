"""Lay receipts, X/Z reports and the test page out as ESC/POS bytes with python-escpos.

Why bytes and not printing directly: the durable print queue stores exactly what goes on paper,
so a retry or a reprint sends the same bytes, and layout never waits on a device. python-escpos'
``Dummy`` printer gives us its commands and code-page handling without any I/O.
"""

from __future__ import annotations

from decimal import Decimal

from escpos.printer import Dummy

from edge.peripherals.printer.receipt import Receipt, ShiftReport, TaxRow, Tender
from edge.peripherals.printer.settings import PaperSettings

CENT = Decimal("0.01")


def money(amount: Decimal) -> str:
    """Two decimals, rounded half-even like the ledger."""
    return f"{amount.quantize(CENT):,.2f}"


def _quantity(q: Decimal) -> str:
    return f"{q.normalize():f}"


class _Page:
    """A Dummy printer with the few layout moves receipts need."""

    def __init__(self, paper: PaperSettings) -> None:
        self.p = Dummy(profile=paper.profile)
        self.cols = paper.columns
        self.paper = paper
        self.p.hw("INIT")

    def centered(self, text: str, *, bold: bool = False, big: bool = False) -> None:
        self.p.set(align="center", bold=bold, double_width=big, double_height=big)
        width = self.cols // 2 if big else self.cols
        self.p.textln(text[:width])
        self.p.set(align="left", bold=False, normal_textsize=True)

    def pair(self, left: str, right: str, *, bold: bool = False, tall: bool = False) -> None:
        """``left`` and ``right`` on one line, the left side cut to make room."""
        if bold or tall:
            self.p.set(bold=bold, double_height=tall)
        room = self.cols - len(right) - 1
        self.p.textln(f"{left[:room]:<{room}} {right}")
        if bold or tall:
            self.p.set(bold=False, normal_textsize=True)

    def rule(self, char: str = "-") -> None:
        self.p.textln(char * self.cols)

    def tax_rows(self, rows: tuple[TaxRow, ...]) -> None:
        if not rows:
            return
        self.p.textln(f"{'Rate':<10}{'Net':>{self.cols // 2 - 5}}{'Tax':>{self.cols // 2 - 5}}")
        for row in rows:
            label = f"{row.label} {row.rate.normalize():f}%"
            net, tax = money(row.net), money(row.tax)
            self.p.textln(f"{label[:10]:<10}{net:>{self.cols // 2 - 5}}{tax:>{self.cols // 2 - 5}}")

    def tenders(self, tenders: tuple[Tender, ...]) -> None:
        for t in tenders:
            self.pair(t.kind, money(t.amount))

    def finish(self, *, cut: bool = True) -> bytes:
        if cut:
            self.p.cut()
        return bytes(self.p.output)


def render_receipt(receipt: Receipt, paper: PaperSettings) -> bytes:
    """The ESC/POS bytes of a customer receipt."""
    page = _Page(paper)
    page.centered(receipt.store_name, bold=True, big=True)
    for line in receipt.header_lines:
        page.centered(line)
    if receipt.reprint:
        page.centered("*** REPRINT ***", bold=True)
    page.rule()
    page.pair(f"Register {receipt.register}", f"No. {receipt.receipt_number}")
    page.pair(receipt.issued_at.strftime("%Y-%m-%d %H:%M"), receipt.cashier)
    page.rule()
    for item in receipt.lines:
        page.pair(item.description, money(item.amount))
        if item.quantity != 1:
            page.p.textln(f"  {_quantity(item.quantity)} x {money(item.unit_price)}")
    for discount in receipt.discounts:
        page.pair(discount.description, money(-discount.amount))
    page.rule()
    page.pair(f"TOTAL {receipt.currency}", money(receipt.total), bold=True, tall=True)
    page.rule()
    page.tenders(receipt.tenders)
    if receipt.change:
        page.pair("Change", money(receipt.change))
    page.rule()
    page.tax_rows(receipt.tax_rows)
    if receipt.code == "qr":
        page.p.qr(
            receipt.code_payload,
            size=paper.qr_module,
            native=paper.qr_native,
            center=not paper.qr_native,
        )
        if paper.qr_native:
            page.p.ln()
    elif receipt.code == "barcode":
        # Rendered here (python-barcode) and sent as a raster: looks the same on every model.
        page.p.set(align="center")
        page.p.barcode(receipt.receipt_number, "CODE128", force_software="bitImageRaster")
        page.p.set(align="left")
    for line in receipt.footer_lines:
        page.centered(line)
    return page.finish()


def render_shift_report(report: ShiftReport, paper: PaperSettings) -> bytes:
    """An X or Z report: the shift's totals for the register."""
    page = _Page(paper)
    page.centered(report.store_name, bold=True)
    title = "Z REPORT" if report.kind == "Z" else "X REPORT (no reset)"
    page.centered(title, bold=True, big=report.kind == "Z")
    if report.z_number is not None:
        page.centered(f"Z No. {report.z_number}")
    page.rule()
    page.pair("Register", report.register)
    page.pair("Shift", report.shift_id)
    page.pair("Opened", report.opened_at.strftime("%Y-%m-%d %H:%M"))
    page.pair("Printed", report.printed_at.strftime("%Y-%m-%d %H:%M"))
    page.rule()
    page.pair("Sales", str(report.sales_count))
    page.pair("Gross", money(report.gross))
    page.pair("Discounts", money(-report.discounts))
    page.pair("Returns", money(-report.returns))
    page.pair("Net", money(report.net), bold=True)
    page.rule()
    page.tax_rows(report.tax_rows)
    page.rule()
    page.tenders(report.tenders)
    page.pair("Cash expected", money(report.cash_expected))
    if report.cash_counted is not None:
        page.pair("Cash counted", money(report.cash_counted))
        page.pair("Difference", money(report.cash_counted - report.cash_expected), bold=True)
    return page.finish()


def render_test_page(paper: PaperSettings, *, title: str = "storefleet test page") -> bytes:
    """Every style we use, the column ruler and a QR code: what a technician checks."""
    page = _Page(paper)
    page.centered(title, bold=True, big=True)
    page.p.textln("".join(str(i % 10) for i in range(paper.columns)))
    page.p.set(bold=True)
    page.p.textln("bold")
    page.p.set(bold=False, double_height=True)
    page.p.textln("double height")
    page.p.set(normal_textsize=True, double_width=True)
    page.p.textln("double width")
    page.p.set(normal_textsize=True, align="right")
    page.p.textln("right")
    page.p.set(align="left")
    page.p.textln("Euro € Umlaut äöü ß")
    page.p.qr(title, size=paper.qr_module, native=paper.qr_native)
    return page.finish()


def drawer_kick(pin: int = 2) -> bytes:
    """ESC p m t1 t2: pulse the drawer solenoid on connector pin 2 or 5."""
    p = Dummy()
    p.cashdraw(pin)
    return bytes(p.output)
