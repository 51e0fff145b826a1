"""Receipts and X/Z reports as plain monospaced text, 32, 42 or 48 columns wide.

How it works: every line is built by ``_lr`` (text left, amount right, the text cut so the
amount always shows), ``_center`` or ``_fit``; widths are *printed columns*
(:mod:`edge.checkout.text_columns`: a CJK ideograph takes two, a combining accent none), and
every text goes through ``clean`` so a name cannot break a line. Amounts come straight from the
frozen records and are formatted with the currency's exponent (``format_minor``), so the paper
says exactly what the journal says. The printer service turns this text (or the records
themselves) into ESC/POS; the kiosk shows the same text as a preview.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from edge.checkout.money import Currency, format_minor
from edge.checkout.returns import SaleReturn
from edge.checkout.sale import Sale
from edge.checkout.shift import ReportKind, ShiftReport
from edge.checkout.tax import PricingMode, TaxRow
from edge.checkout.tenders import Tender, TenderKind
from edge.checkout.text_columns import center, clean, columns, fit, pad_left, pad_right

WIDTHS = (32, 42, 48)


def _check_width(width: int) -> None:
    if width not in WIDTHS:
        raise ValueError(f"receipt width must be one of {WIDTHS}")


def _fit(text: str, width: int) -> str:
    return fit(clean(text), width)


def _lr(left: str, right: str, width: int) -> str:
    right = _fit(right, width)
    room = width - columns(right) - 1
    if room <= 0:
        return right
    return f"{pad_right(fit(clean(left), room, ellipsis='…'), room)} {right}"


def _center(text: str, width: int) -> str:
    return center(_fit(text, width), width).rstrip()


def _rate(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"


def _tender_label(tender: Tender) -> str:
    if tender.kind is TenderKind.CARD:
        return f"Card {tender.scheme or ''} ****{tender.last4 or ''}".replace("  ", " ")
    return _LABELS[tender.kind]


_LABELS = {
    TenderKind.CASH: "Cash",
    TenderKind.POINTS: "Loyalty points",
    TenderKind.STORE_CREDIT: "Store credit",
}


def _loyalty_block(sale: Sale, width: int, link: str | None) -> list[str]:
    """The customer's id, tier and the sale's points; the digital receipt's link."""
    if sale.customer_id is None:
        return []
    out = []
    tier = f" ({sale.loyalty.tier})" if sale.loyalty is not None else ""
    out.append(_fit(f"Customer {sale.customer_id}{tier}", width))
    if sale.loyalty is not None:
        out.append(_lr("Points earned", f"+{sale.loyalty.points_earned}", width))
        if sale.loyalty.points_burned:
            out.append(_lr("Points redeemed", f"-{sale.loyalty.points_burned}", width))
    if link is not None:
        out += [_fit("Digital receipt:", width), *_wrap(link, width)]
    return [*out, "-" * width]


def _return_loyalty_block(ret: SaleReturn, money: Currency, width: int) -> list[str]:
    """What the return moved on the customer's account: points taken back, credit issued.

    The customer reads here why their balance fell (or rose) after the return: the points are
    the share of the sale's earned points this return reverses, as journaled with it.
    """
    if ret.customer_id is None or not (ret.points_reversed or ret.store_credit_issued_minor):
        return []
    out = [_fit(f"Customer {ret.customer_id}", width)]
    if ret.points_reversed:
        out.append(_lr("Points reversed", f"-{ret.points_reversed}", width))
    if ret.store_credit_issued_minor:
        credit = format_minor(ret.store_credit_issued_minor, money)
        out.append(_lr("Store credit issued", f"+{credit}", width))
    return ["-" * width, *out]


def _wrap(text: str, width: int) -> list[str]:
    """A link cut into lines of ``width`` (never shortened: it must still be typed in)."""
    return [text[i : i + width] for i in range(0, len(text), width)]


def _tax_block(rows: Sequence[TaxRow], money: Currency, width: int) -> list[str]:
    out = [_lr(f"{'Tax':<4}{'rate':>6}{'net':>10}", "tax", width)]
    for row in rows:
        net = format_minor(row.net_minor, money)
        codes = pad_right(clean("/".join(row.codes)), 4)
        left = f"{codes}{_rate(row.rate):>6}{pad_left(net, 10)}"
        out.append(_lr(left, format_minor(row.tax_minor, money), width))
    return out


def render_receipt(
    sale: Sale,
    *,
    width: int = 42,
    header: Sequence[str] = (),
    footer: Sequence[str] = ("Thank you!",),
    cashier_name: str | None = None,
    receipt_link: str | None = None,
) -> str:
    """The customer receipt of a completed sale.

    ``cashier_name`` is the name the customer sees (the employee's display name); without it
    the journaled cashier id is printed. A sale with a customer prints their pseudonymous id,
    tier and points, and ``receipt_link`` (the digital receipt) when the store has one.
    """
    _check_width(width)
    money = Currency(sale.currency, sale.exponent)
    rule = "-" * width
    out = [_center(h, width) for h in header]
    number, when = f"Receipt {sale.receipt_id}", sale.completed_at.strftime("%Y-%m-%d %H:%M")
    if columns(number) + len(when) < width:
        out += [rule, _lr(number, when, width)]
    else:  # never cut the receipt number: put the time on its own line
        out += [rule, _fit(number, width), when]
    out += [_fit(f"Cashier {cashier_name or sale.cashier_id}", width), rule]
    for line in sale.lines:
        out.append(
            _lr(f"{line.name}", f"{format_minor(line.gross_minor, money)} {line.tax_class}", width)
        )
        unit = format_minor(line.unit_price_minor, money)
        if line.quantity != 1 or line.unit_price_minor != line.catalog_price_minor:
            qty = f"{line.quantity:f}"
            out.append(_fit(f"  {qty} x {unit}", width))
        if line.unit_price_minor != line.catalog_price_minor:
            was = format_minor(line.catalog_price_minor, money)
            out.append(_fit(f"  price changed from {was}", width))
        if line.discount_minor:
            out.append(_lr("  Discount", f"-{format_minor(line.discount_minor, money)}", width))
    out += [rule, _lr("Subtotal", format_minor(sale.subtotal_minor, money), width)]
    discounts = sale.line_discount_minor + sale.basket_discount_minor
    if discounts:
        out.append(_lr("Discounts", f"-{format_minor(discounts, money)}", width))
    if sale.pricing is PricingMode.EXCLUSIVE:  # tax is added at the till: show it before total
        out.append(_lr("Tax", format_minor(sale.tax_minor, money), width))
    out.append(_lr(f"TOTAL {sale.currency}", format_minor(sale.total_minor, money), width))
    if sale.rounding_minor:
        out.append(_lr("Cash rounding", format_minor(sale.rounding_minor, money), width))
        out.append(_lr("To pay", format_minor(sale.paid_minor, money), width))
    out.append(rule)
    for tender in sale.tenders:
        out.append(_lr(_tender_label(tender), format_minor(tender.received_minor, money), width))
    if sale.change_minor:
        out.append(_lr("Change", format_minor(sale.change_minor, money), width))
    out += [rule, *_tax_block(sale.tax_rows, money, width), rule]
    out += _loyalty_block(sale, width, receipt_link)
    out += [_center(f, width) for f in footer]
    return "\n".join(out) + "\n"


def render_return(sale_return: SaleReturn, *, width: int = 42) -> str:
    """The receipt of a return: what was returned, how it was paid back, and what it moved on
    the customer's account (points reversed, store credit issued)."""
    _check_width(width)
    money = Currency(sale_return.currency, sale_return.exponent)
    rule = "-" * width
    out = [_center("RETURN", width), rule, _fit(f"Receipt {sale_return.receipt_id}", width)]
    if sale_return.original_receipt:
        out.append(_fit(f"Original {sale_return.original_receipt}", width))
    out.append(rule)
    for line in sale_return.lines:
        out.append(
            _lr(
                f"{line.quantity:f} x {line.name}",
                f"-{format_minor(line.refund_minor, money)}",
                width,
            )
        )
    out += [
        rule,
        _lr(f"REFUND {sale_return.currency}", format_minor(sale_return.refund_minor, money), width),
    ]
    if sale_return.rounding_minor:
        out.append(_lr("Cash rounding", format_minor(sale_return.rounding_minor, money), width))
    for tender in sale_return.refunds:
        out.append(_lr(_tender_label(tender), format_minor(tender.amount_minor, money), width))
    out += [rule, *_tax_block(sale_return.tax_rows, money, width)]
    out += _return_loyalty_block(sale_return, money, width)
    return "\n".join(out) + "\n"


def render_report(report: ShiftReport, *, width: int = 42) -> str:
    """An X (mid-shift) or Z (closing) report."""
    _check_width(width)
    money = Currency(report.currency, report.exponent)
    rule = "-" * width

    def amount(label: str, minor: int) -> str:
        return _lr(label, format_minor(minor, money), width)

    title = "X REPORT" if report.report is ReportKind.X else "Z REPORT"
    out = [_center(title, width), rule, _fit(f"Register {report.register_id}", width)]
    out += [_fit(f"Shift {report.shift_id}", width)]
    out += [_lr("Opened", report.opened_at.strftime("%Y-%m-%d %H:%M"), width)]
    out += [_lr("At", report.at.strftime("%Y-%m-%d %H:%M"), width), rule]
    out += [_lr("Sales", str(report.sales_count), width), amount("Sales total", report.sales_minor)]
    out += [_lr("Returns", str(report.returns_count), width)]
    out += [
        amount("Returns total", report.returns_minor),
        amount("Discounts", report.discounts_minor),
    ]
    out += [_lr("Voided sales", str(report.voided_sales_count), width)]
    out += [_lr("Voided lines", str(report.voided_lines_count), width), rule, "By tender"]
    out += [amount(f"  {b.key} ({b.count})", b.amount_minor) for b in report.by_tender]
    out += ["By department"]
    out += [amount(f"  {b.key} ({b.count})", b.amount_minor) for b in report.by_department]
    out += [rule, *_tax_block(report.by_tax_rate, money, width), rule]
    out += [amount("Float", report.float_minor), amount("Cash in", report.cash_in_minor)]
    out += [
        amount("Cash out", report.cash_out_minor),
        amount("Cash rounding", report.rounding_minor),
    ]
    out += [amount("Expected cash", report.expected_cash_minor)]
    if report.counted_cash_minor is not None and report.variance_minor is not None:
        out += [amount("Counted cash", report.counted_cash_minor)]
        out += [amount("Variance", report.variance_minor)]
    return "\n".join(out) + "\n"
