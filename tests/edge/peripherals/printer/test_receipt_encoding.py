"""Receipt text on paper: only what the printer profile can print, never wider than the paper."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.checkout.text_columns import columns
from edge.peripherals.printer.escpos_stream import tokenize
from edge.peripherals.printer.layout import render_receipt, render_shift_report, render_text
from edge.peripherals.printer.preview import BAD, Preview, TextLine, interpret
from edge.peripherals.printer.profile import PrinterProfile
from edge.peripherals.printer.receipt import Receipt, ReceiptLine, ShiftReport, Tender
from edge.peripherals.printer.settings import PaperSettings

PROPERTY = settings(
    deadline=None,
    derandomize=True,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CJK = "有機栽培コーヒー豆"  # 9 wide characters: 18 columns
PAPERS = [
    pytest.param(PaperSettings(), id="80mm-no-cjk"),
    pytest.param(PaperSettings(width_mm=58), id="58mm-no-cjk"),
    pytest.param(PaperSettings(profile="TM-T20II", cjk="gb18030"), id="80mm-gb18030"),
    pytest.param(PaperSettings(profile="TM-P80", width_mm=58, cjk="shift_jis"), id="58mm-sjis"),
    pytest.param(PaperSettings(profile="simple"), id="cp437-only"),
]


def named(receipt: Receipt, *names: str) -> Receipt:
    """The sample receipt with items called ``names``."""
    lines = tuple(
        ReceiptLine(
            description=name,
            quantity=Decimal(1),
            unit_price=Decimal("1.10"),
            amount=Decimal("1.10"),
        )
        for name in names
    )
    return replace(receipt, lines=lines)


def fits(preview: Preview, paper: PaperSettings) -> bool:
    """Every printed line within the paper's columns, character size included."""
    return all(
        columns(row.text) * row.width <= paper.columns
        for row in preview.rows
        if isinstance(row, TextLine)
    )


def assert_only_supported_text(data: bytes, paper: PaperSettings) -> Preview:
    """The job selects only the profile's code pages and every byte decodes to a character."""
    pages = PrinterProfile.for_paper(paper).code_pages
    tokens, used = tokenize(data)
    assert used == len(data)
    assert all(t.known for t in tokens)
    assert {t.args[0] for t in tokens if t.prefix == b"\x1bt"} <= set(pages)
    if paper.cjk is None:
        assert not any(t.prefix == b"\x1c&" for t in tokens)
    preview = interpret(data, paper)
    assert preview.unsupported == []
    assert not any(BAD in line for line in preview.text_lines)
    return preview


def test_cjk_name_without_a_double_byte_mode_prints_question_marks_of_the_same_width(
    receipt: Receipt,
) -> None:
    paper = PaperSettings()
    data = render_receipt(named(receipt, CJK), paper)
    assert CJK.encode("gb18030") not in data  # the bug: raw GB18030 without any mode command
    preview = assert_only_supported_text(data, paper)
    item = next(line for line in preview.text_lines if line.endswith("1.10"))
    assert item == "?" * 18 + " " * 20 + "1.10"
    assert fits(preview, paper)


@pytest.mark.parametrize(
    ("cjk", "profile", "before"),
    [
        pytest.param("gb18030", "TM-T20II", b"\x1c&", id="gb18030"),
        pytest.param("shift_jis", "TM-P80", b"\x1cC\x01\x1c&", id="shift-jis"),
    ],
)
def test_a_double_byte_mode_prints_cjk_between_fs_and_and_fs_dot(
    receipt: Receipt, cjk: str, profile: str, before: bytes
) -> None:
    paper = PaperSettings(profile=profile, cjk=cjk)  # type: ignore[arg-type]
    data = render_receipt(named(receipt, CJK + " 500g"), paper)
    assert before + CJK.encode(cjk) + b"\x1c. 500g" in data
    preview = assert_only_supported_text(data, paper)
    item = next(line for line in preview.text_lines if line.endswith("1.10"))
    assert item.startswith(CJK + " 500g")
    assert columns(item) == paper.columns


@pytest.mark.parametrize(
    ("name", "profile", "printed"),
    [
        pytest.param("Crème brûlée", "TM-T88V", "Crème brûlée", id="code-page"),
        pytest.param("Dvořák Łódź €5", "TM-T88V", "Dvořák Łódź €5", id="switches-pages"),
        pytest.param("Dvořák Łódź €5", "simple", "Dvorák ?ódz ?5", id="nfkd-then-?"),
        pytest.param("Ｃａｆé", "simple", "C a f é", id="fullwidth-keeps-width"),
        pytest.param("Tea 🍵 x", "TM-T88V", "Tea ?? x", id="emoji-two-columns"),
        pytest.param("a\u200bb\u0301", "TM-T88V", "ab", id="zero-width-dropped"),
    ],
)
def test_unprintable_characters_are_replaced_predictably(
    receipt: Receipt, name: str, profile: str, printed: str
) -> None:
    paper = PaperSettings(profile=profile)
    preview = assert_only_supported_text(render_receipt(named(receipt, name), paper), paper)
    assert PrinterProfile.for_paper(paper).printable(name) == printed
    item = next(line for line in preview.text_lines if line.endswith("1.10"))
    assert (item[: len(printed)], item[len(printed) :].strip()) == (printed, "1.10")


def test_an_item_name_can_never_send_a_command(receipt: Receipt) -> None:
    paper = PaperSettings()
    data = render_receipt(named(receipt, "Soap\x1dV\x00\x1bp\x00\x10\x04\x01"), paper)
    preview = assert_only_supported_text(data, paper)
    assert (preview.cuts, preview.drawer_kicks, preview.status_queries) == (1, [], [])


@pytest.mark.parametrize(
    ("currency", "exponent", "amounts"),
    [
        pytest.param("JPY", 0, ("1,290", "1,300", "10"), id="JPY"),
        pytest.param("KWD", 3, ("1.290", "1.300", "0.010"), id="KWD"),
        pytest.param("CHF", 2, ("1.29", "1.30", "0.01"), id="CHF"),
    ],
)
def test_amounts_print_with_the_currency_exponent(
    receipt: Receipt, currency: str, exponent: int, amounts: tuple[str, str, str]
) -> None:
    total, cash, change = (Decimal(a.replace(",", "")) for a in amounts)
    sale = replace(
        named(receipt),
        currency=currency,
        exponent=exponent,
        total=total,
        tax_rows=(),
        discounts=(),
        tenders=(Tender(kind="Cash", amount=cash),),
        change=change,
    )
    lines = interpret(render_receipt(sale, PaperSettings())).text_lines
    assert [line.split()[-1] for line in lines if line.split()[:1] == ["TOTAL"]] == [amounts[0]]
    assert any(line.split() == ["Cash", amounts[1]] for line in lines)
    assert any(line.split() == ["Change", amounts[2]] for line in lines)


def test_shift_report_uses_the_currency_exponent() -> None:
    report = ShiftReport(
        kind="X",
        store_name="Tokyo",
        register="1",
        shift_id="S1",
        opened_at=datetime(2026, 11, 21, 9, 0),
        printed_at=datetime(2026, 11, 21, 18, 0),
        sales_count=2,
        gross=Decimal(2580),
        discounts=Decimal(0),
        returns=Decimal(0),
        net=Decimal(2580),
        cash_expected=Decimal(12580),
        currency="JPY",
        exponent=0,
    )
    lines = interpret(render_shift_report(report, PaperSettings())).text_lines
    assert any(line.split() == ["Net", "2,580"] for line in lines)
    assert any(line.split() == ["Cash", "expected", "12,580"] for line in lines)


NAMES = st.lists(st.text(max_size=50), min_size=1, max_size=4)
ANY_PAPER = st.sampled_from([p.values[0] for p in PAPERS])


@PROPERTY
@given(names=NAMES, paper=ANY_PAPER)
def test_any_names_encode_to_supported_bytes_that_fit_the_paper(
    receipt: Receipt, names: list[str], paper: PaperSettings
) -> None:
    sample = replace(
        named(receipt, *names), store_name=names[0], header_lines=tuple(names), cashier=names[-1]
    )
    data = render_receipt(sample, paper)
    preview = assert_only_supported_text(data, paper)
    assert fits(preview, paper)


@PROPERTY
@given(lines=st.lists(st.text(max_size=80), max_size=6), paper=ANY_PAPER)
def test_any_text_receipt_encodes_to_supported_bytes_that_fit_the_paper(
    lines: list[str], paper: PaperSettings
) -> None:
    data = render_text("\n".join(lines), paper=paper, qr_payload="SF1:1:000001")
    preview = assert_only_supported_text(data, paper)
    assert fits(preview, paper)
