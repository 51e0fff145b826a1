"""Lay receipts, X/Z reports and the test page out as ESC/POS bytes for the configured paper.

Why bytes and not printing directly: the durable print queue stores exactly what goes on paper,
so a retry or a reprint sends the same bytes, and layout never waits on a device.

How it works: a :class:`_Page` lays lines out in *printed columns* of the paper
(:class:`PaperSettings`: 32 on 58 mm, 42 or 48 on 80 mm), sends every text through the
printer profile's :class:`TextEncoder` (code pages, double-byte mode, the rest replaced with the
same width, see :mod:`.profile`), so no line is wider than the paper. Amounts are formatted by
:func:`edge.checkout.money.format_amount` with the receipt's currency exponent. Codes are raster
images centred on the paper's dots (:mod:`.raster`) with their quiet zone; ``qr_native`` asks
the printer to draw the QR code (``GS ( k``) centred, with four modules of paper fed around it.
python-escpos' ``Dummy`` printer supplies the cut, the drawer kick and the native QR commands.
"""

from __future__ import annotations

from decimal import Decimal

from escpos.constants import QR_ECLEVEL_M
from escpos.printer import Dummy

from edge.checkout.money import Currency, format_amount
from edge.checkout.text_columns import center, columns, fit, pad_left, pad_right
from edge.peripherals.printer.profile import PrinterProfile
from edge.peripherals.printer.raster import QUIET_ZONE, code128_image, qr_raster, raster
from edge.peripherals.printer.receipt import Receipt, ShiftReport, TaxRow, Tender
from edge.peripherals.printer.settings import PaperSettings
from edge.peripherals.printer.text_encoder import TextEncoder

INIT = b"\x1b@"  # ESC @
ALIGN = {"left": b"\x1ba\x00", "center": b"\x1ba\x01", "right": b"\x1ba\x02"}  # ESC a n
BOLD = {False: b"\x1bE\x00", True: b"\x1bE\x01"}  # ESC E n
QR_DPI = 203  # python-escpos default when a profile has no dpi


def _size(width: int, height: int) -> bytes:
    """GS ! n: character size for single- and double-byte characters alike."""
    return b"\x1d!" + bytes((((width - 1) << 4) | (height - 1),))


def _quantity(q: Decimal) -> str:
    return f"{q.normalize():f}"


class _Page:
    """One job's bytes, with the few layout moves receipts need."""

    def __init__(self, paper: PaperSettings, *, currency: Currency | None = None) -> None:
        self.p = Dummy(profile=paper.profile)
        self.paper = paper
        self.cols = paper.columns
        self.profile = PrinterProfile.for_paper(paper)
        self.encoder = TextEncoder(self.profile)
        self.currency = currency or Currency("EUR", 2)
        self.raw(INIT)

    def raw(self, data: bytes) -> None:
        self.p._raw(data)  # python-escpos' documented raw-bytes hook

    def money(self, amount: Decimal) -> str:
        return format_amount(amount, self.currency, grouping=True)

    def line(self, text: str = "", *, width: int | None = None) -> None:
        """``text`` cut to the line (``width`` columns) and printed."""
        printed = fit(self.profile.printable(text), width or self.cols)
        self.raw(self.encoder.encode(printed) + b"\n")

    def centered(self, text: str, *, bold: bool = False, big: bool = False) -> None:
        self.raw(ALIGN["center"] + BOLD[bold] + _size(2 if big else 1, 2 if big else 1))
        self.line(text, width=self.cols // 2 if big else self.cols)
        self.raw(ALIGN["left"] + BOLD[False] + _size(1, 1))

    def pair(self, left: str, right: str, *, bold: bool = False, tall: bool = False) -> None:
        """``left`` and ``right`` on one line, the left side cut to make room."""
        if bold or tall:
            self.raw(BOLD[bold] + _size(1, 2 if tall else 1))
        right = fit(self.profile.printable(right), self.cols)
        room = self.cols - columns(right) - 1
        left = fit(self.profile.printable(left), max(room, 0))
        self.line(f"{pad_right(left, room)} {right}" if room > 0 else right)
        if bold or tall:
            self.raw(BOLD[False] + _size(1, 1))

    def rule(self, char: str = "-") -> None:
        self.line(char * self.cols)

    def tax_rows(self, rows: tuple[TaxRow, ...]) -> None:
        if not rows:
            return
        half = self.cols // 2 - 5
        self.line(f"{'Rate':<10}{'Net':>{half}}{'Tax':>{half}}")
        for row in rows:
            label = fit(self.profile.printable(f"{row.label} {row.rate.normalize():f}%"), 10)
            net, tax = self.money(row.net), self.money(row.tax)
            self.line(pad_right(label, 10) + pad_left(net, half) + pad_left(tax, half))

    def tenders(self, tenders: tuple[Tender, ...]) -> None:
        for t in tenders:
            self.pair(t.kind, self.money(t.amount))

    def qr(self, payload: str) -> None:
        """The QR code of ``payload``, centred, with its four-module quiet zone."""
        if not self.paper.qr_native:
            self.raw(qr_raster(payload, module=self.paper.qr_module, dots=self.paper.dots))
            return
        feed = b"\x1bJ" + bytes((min(QUIET_ZONE * self.paper.qr_module, 255),))  # ESC J n
        self.raw(ALIGN["center"] + feed)
        self.p.qr(payload, size=self.paper.qr_module, native=True, ec=QR_ECLEVEL_M)
        self.raw(feed + ALIGN["left"])

    def barcode(self, data: str) -> None:
        dpi = self.p.profile.profile_data.get("media", {}).get("dpi")
        image = code128_image(data, dpi=int(dpi) if str(dpi).isdigit() else QR_DPI)
        self.raw(raster(image, dots=self.paper.dots))

    def finish(self, *, cut: bool = True) -> bytes:
        if cut:
            self.p.cut()
        return bytes(self.p.output)


def render_text(
    text: str,
    *,
    paper: PaperSettings,
    qr_payload: str | None = None,
    link_qr: str | None = None,
) -> bytes:
    """Receipt text as the register laid it out (each line cut to the paper), QR codes, a cut.

    ``link_qr``: the customer's digital receipt link, printed as a QR code above the receipt's
    own (a phone opens it; the text above stays for typing it in).
    """
    page = _Page(paper)
    for line in text.rstrip("\n").split("\n"):
        page.line(line)
    if link_qr:
        page.qr(link_qr)
    if qr_payload:
        page.qr(qr_payload)
    return page.finish()


def render_receipt(receipt: Receipt, paper: PaperSettings) -> bytes:
    """The ESC/POS bytes of a customer receipt."""
    page = _Page(paper, currency=Currency(receipt.currency, receipt.exponent))
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
        page.pair(item.description, page.money(item.amount))
        if item.quantity != 1:
            page.line(f"  {_quantity(item.quantity)} x {page.money(item.unit_price)}")
    for discount in receipt.discounts:
        page.pair(discount.description, page.money(-discount.amount))
    page.rule()
    page.pair(f"TOTAL {receipt.currency}", page.money(receipt.total), bold=True, tall=True)
    page.rule()
    page.tenders(receipt.tenders)
    if receipt.change:
        page.pair("Change", page.money(receipt.change))
    page.rule()
    page.tax_rows(receipt.tax_rows)
    if receipt.code == "qr":
        page.qr(receipt.code_payload)
    elif receipt.code == "barcode":  # rendered here: looks the same on every model
        page.barcode(receipt.receipt_number)
    for line in receipt.footer_lines:
        page.centered(line)
    return page.finish()


def render_shift_report(report: ShiftReport, paper: PaperSettings) -> bytes:
    """An X or Z report: the shift's totals for the register."""
    page = _Page(paper, currency=Currency(report.currency, report.exponent))
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
    page.pair("Gross", page.money(report.gross))
    page.pair("Discounts", page.money(-report.discounts))
    page.pair("Returns", page.money(-report.returns))
    page.pair("Net", page.money(report.net), bold=True)
    page.rule()
    page.tax_rows(report.tax_rows)
    page.rule()
    page.tenders(report.tenders)
    page.pair("Cash expected", page.money(report.cash_expected))
    if report.cash_counted is not None:
        page.pair("Cash counted", page.money(report.cash_counted))
        difference = report.cash_counted - report.cash_expected
        page.pair("Difference", page.money(difference), bold=True)
    return page.finish()


def render_test_page(paper: PaperSettings, *, title: str = "storefleet test page") -> bytes:
    """Every style we use, the column ruler and a QR code: what a technician checks."""
    page = _Page(paper)
    page.centered(title, bold=True, big=True)
    page.line("".join(str(i % 10) for i in range(paper.columns)))
    page.raw(BOLD[True])
    page.line("bold")
    page.raw(BOLD[False] + _size(1, 2))
    page.line("double height")
    page.raw(_size(2, 1))
    page.line("double width", width=paper.columns // 2)
    page.raw(_size(1, 1) + ALIGN["right"])
    page.line("right")
    page.raw(ALIGN["left"])
    page.line("Euro € Umlaut äöü ß")
    page.line(center(f"{paper.width_mm} mm · {paper.dots} dots", paper.columns))
    page.qr(title)
    return page.finish()


def drawer_kick(pin: int = 2) -> bytes:
    """ESC p m t1 t2: pulse the drawer solenoid on connector pin 2 or 5."""
    p = Dummy()
    p.cashdraw(pin)
    return bytes(p.output)
