"""Layout, preview and status bytes, without any I/O."""

from datetime import datetime
from decimal import Decimal

import pytest
import zxingcpp
from escpos.constants import RT_MASK_NOPAPER

from edge.peripherals.printer.escpos_stream import tokenize
from edge.peripherals.printer.layout import render_receipt, render_shift_report, render_test_page
from edge.peripherals.printer.preview import interpret
from edge.peripherals.printer.receipt import Receipt, ShiftReport, Tender
from edge.peripherals.printer.settings import PaperSettings, PrinterSettings
from edge.peripherals.printer.status import PrinterStatus, decode_status, encode_status

from .conftest import ARTIFACTS


@pytest.mark.parametrize(
    "paper",
    [
        pytest.param(PaperSettings(), id="80mm-raster-qr"),
        pytest.param(PaperSettings(qr_native=True), id="80mm-native-qr"),
        pytest.param(PaperSettings(profile="TM-T20II", width_mm=58), id="58mm"),
    ],
)
def test_receipt_text_and_qr(receipt: Receipt, paper: PaperSettings) -> None:
    preview = interpret(render_receipt(receipt, paper), paper)
    image = preview.to_png(ARTIFACTS / f"receipt-{paper.profile}-{paper.columns}.png")
    total = next(line for line in preview.text_lines if line.startswith("TOTAL"))
    assert (len(total), total.split()) == (paper.columns, ["TOTAL", "EUR", "26.08"])
    assert preview.text_lines[0] == "Corner Shop"
    assert "  2 x 12.99" in preview.text_lines
    assert [r.text for r in zxingcpp.read_barcodes(image)] == ["SF1:R1:000123"]
    assert preview.unknown == []


def test_bold_double_size_and_alignment_reach_the_text_layer(receipt: Receipt) -> None:
    preview = interpret(render_receipt(receipt, PaperSettings()))
    title = preview.rows[0]
    total = next(r for r in preview.rows if getattr(r, "text", "").startswith("TOTAL"))
    assert (title.align, title.bold, title.width, title.height) == ("center", True, 2, 2)  # type: ignore[union-attr]
    assert (total.align, total.bold, total.width, total.height) == ("left", True, 1, 2)  # type: ignore[union-attr]


def test_money_must_be_decimal(receipt: Receipt) -> None:
    with pytest.raises(TypeError, match="float"):
        Tender(kind="Cash", amount=30.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "title"),
    [pytest.param("X", "X REPORT (no reset)", id="x"), pytest.param("Z", "Z REPORT", id="z")],
)
def test_shift_reports(kind: str, title: str) -> None:
    report = ShiftReport(
        kind=kind,  # type: ignore[arg-type]
        store_name="Corner Shop",
        register="R1",
        shift_id="S42",
        opened_at=datetime(2026, 11, 21, 8, 0),
        printed_at=datetime(2026, 11, 21, 18, 0),
        sales_count=57,
        gross=Decimal("1234.50"),
        discounts=Decimal("10.00"),
        returns=Decimal("24.50"),
        net=Decimal("1200.00"),
        tenders=(Tender(kind="Cash", amount=Decimal("400.00")),),
        cash_expected=Decimal("500.00"),
        cash_counted=Decimal("498.00"),
        z_number=7 if kind == "Z" else None,
    )
    lines = interpret(render_shift_report(report, PaperSettings())).text_lines
    assert title in lines
    assert any(line.split() == ["Difference", "-2.00"] for line in lines)
    assert any(line.split() == ["Net", "1,200.00"] for line in lines)


def test_test_page_prints_accented_text_through_code_pages() -> None:
    preview = interpret(render_test_page(PaperSettings()))
    preview.to_png(ARTIFACTS / "test-page.png")
    assert "Euro € Umlaut äöü ß" in preview.text_lines
    assert preview.cuts == 1


def test_status_request_inside_raster_data_is_not_a_status_request() -> None:
    raster = b"\x1dv0\x00\x02\x00\x01\x00" + b"\x10\x04"  # 2 bytes x 1 row of image data
    tokens, used = tokenize(raster + b"\x10\x04\x04")
    assert used == len(raster) + 3
    assert [t.prefix for t in tokens] == [b"\x1dv", b"\x10\x04"]


def test_tokenize_stops_at_an_incomplete_command() -> None:
    tokens, used = tokenize(b"abc\x1dv0\x00\x02\x00\x01")
    assert ([t.args for t in tokens], used) == ([b"abc"], 3)


@pytest.mark.parametrize(
    "status",
    [
        PrinterStatus(online=True, cover_open=False, paper="ok"),
        PrinterStatus(online=True, cover_open=False, paper="near_end"),
        PrinterStatus(online=False, cover_open=False, paper="out"),
        PrinterStatus(online=False, cover_open=True, paper="ok"),
    ],
    ids=["ok", "near-end", "paper-out", "cover-open"],
)
def test_status_bytes_round_trip(status: PrinterStatus) -> None:
    answers = encode_status(status)
    assert decode_status(answers[1], answers[2], answers[4]) == status


def test_paper_out_byte_matches_python_escpos_mask() -> None:
    answers = encode_status(PrinterStatus(online=False, cover_open=False, paper="out"))
    assert answers[4] & RT_MASK_NOPAPER == RT_MASK_NOPAPER


def test_settings_name_the_missing_field() -> None:
    with pytest.raises(ValueError, match="needs host"):
        PrinterSettings(connector="network")
