import dataclasses
from datetime import timedelta

import pytest

from edge.checkout.cart import Cart
from edge.checkout.errors import ShiftError
from edge.checkout.journal_body import JournalRecord
from edge.checkout.money import CHF
from edge.checkout.records import decode_journal_body
from edge.checkout.returns import build_return
from edge.checkout.sale import void_sale
from edge.checkout.shift import CashDirection, ReportKind, Shift, open_shift

from .builders import COFFEE, MILK, T0, make_policy, sell


def a_day() -> tuple[Shift, list[JournalRecord]]:
    shift, opened = open_shift(
        shift_id="S1",
        register_id="R1",
        opened_by="c1",
        opened_at=T0,
        currency="CHF",
        exponent=2,
        float_minor=20000,
    )
    journal: list[JournalRecord] = [opened]
    policy = make_policy()
    cash_sale = sell(Cart(policy=policy, cart_id="a").add_item(COFFEE, 2), receipt_number=1)
    card_sale = sell(
        Cart(policy=policy, cart_id="b").add_item(MILK).add_item(COFFEE).void_line(2),
        card_minor=165,
        receipt_number=2,
    )
    ret = build_return(
        cash_sale,
        {1: 1},
        earlier=[],
        currency=CHF,
        return_id="r1",
        register_id="R1",
        receipt_number=3,
        shift_id="S1",
        cashier_id="c1",
        returned_at=T0 + timedelta(hours=1),
    )
    voided = void_sale(
        Cart(policy=policy, cart_id="c").add_item(MILK),
        register_id="R1",
        shift_id="S1",
        cashier_id="c1",
        voided_at=T0,
    )
    for record in (cash_sale, card_sale, ret, voided):
        shift.record(record)
        journal.append(record)
    journal.append(shift.move_cash(CashDirection.OUT, 10000, reason="safe", by="m1", at=T0))
    journal.append(shift.move_cash(CashDirection.IN, 500, reason="coins", by="m1", at=T0))
    return shift, journal


def test_x_report_mid_shift() -> None:
    shift, _ = a_day()
    x = shift.x_report(at=T0 + timedelta(hours=2))
    assert x.report is ReportKind.X
    assert (x.sales_count, x.returns_count, x.voided_sales_count, x.voided_lines_count) == (
        2,
        1,
        1,
        1,
    )
    assert x.sales_minor == 2580 + 165
    assert x.returns_minor == 1290
    assert {b.key: b.amount_minor for b in x.by_tender} == {"cash": 2580 - 1290, "card": 165}
    assert {b.key: b.amount_minor for b in x.by_department} == {"grocery": 1290, "dairy": 165}
    assert sum(row.gross_minor for row in x.by_tax_rate) == 2580 + 165 - 1290
    # float 200.00 + cash sales 25.80 − refund 12.90 − safe 100.00 + coins 5.00
    assert x.expected_cash_minor == 20000 + 2580 - 1290 - 10000 + 500
    assert x.counted_cash_minor is None


def test_close_with_variance_and_replay() -> None:
    shift, journal = a_day()
    closed, z = shift.close(counted_cash_minor=11700, by="m1", at=T0 + timedelta(hours=8))
    assert z.report is ReportKind.Z
    assert z.journal_kind == "report.z"
    assert closed.variance_minor == z.variance_minor == 11700 - 11790
    with pytest.raises(ShiftError):
        shift.close(counted_cash_minor=0, by="m1", at=T0)
    with pytest.raises(ShiftError):
        shift.move_cash(CashDirection.IN, 1, reason="late", by="m1", at=T0)
    # the ledger rebuilds the shift from journal bodies after a restart
    bodies = [record.to_journal_body() for record in journal]
    replayed = Shift.replay(decode_journal_body(body) for body in bodies)
    assert replayed.x_report(at=z.at) == shift.x_report(at=z.at)


def test_negative_float_refused() -> None:
    with pytest.raises(ShiftError):
        open_shift(
            shift_id="S",
            register_id="R",
            opened_by="c",
            opened_at=T0,
            currency="CHF",
            exponent=2,
            float_minor=-1,
        )


def test_records_of_another_shift_are_refused() -> None:
    shift, _ = a_day()
    other = sell(Cart(policy=make_policy(), cart_id="z").add_item(MILK))
    with pytest.raises(ShiftError):
        shift.record(dataclasses.replace(other, shift_id="S2"))
