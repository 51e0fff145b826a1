"""Paper width is a setting: text, rules and the raster QR code all lay out to it.

The QR checks read the printed raster back from the job's bytes: the image is as wide as the
paper's printable dots, the code decodes, it is centred, and it has the four-module quiet zone
of ISO/IEC 18004 on every side.
"""

from __future__ import annotations

import pytest
import zxingcpp
from PIL import Image, ImageOps
from pydantic import ValidationError

from edge.peripherals.printer.layout import render_receipt, render_test_page, render_text
from edge.peripherals.printer.preview import ImageRow, TextLine, interpret
from edge.peripherals.printer.raster import QUIET_ZONE
from edge.peripherals.printer.receipt import Receipt
from edge.peripherals.printer.settings import PaperSettings

from .conftest import ARTIFACTS

PAYLOAD = "SF1:R1:000123"
PAPERS = [
    pytest.param(PaperSettings(width_mm=58), 384, 32, id="58mm-TM-T88V"),
    pytest.param(PaperSettings(profile="TM-T20II", width_mm=58), 384, 32, id="58mm-TM-T20II"),
    pytest.param(PaperSettings(profile="TM-T20II"), 576, 48, id="80mm-TM-T20II"),
    pytest.param(PaperSettings(profile="TM-T20II", columns=42), 576, 42, id="80mm-42-columns"),
    pytest.param(PaperSettings(), 512, 42, id="80mm-TM-T88V"),
    pytest.param(PaperSettings(profile="NT-5890K", width_mm=58), 384, 32, id="58mm-NT-5890K"),
    pytest.param(PaperSettings(profile="TM-T20II", columns=32), 384, 32, id="old-58mm-config"),
]


def qr_row(receipt: Receipt, paper: PaperSettings) -> Image.Image:
    preview = interpret(render_receipt(receipt, paper), paper)
    preview.to_png(ARTIFACTS / f"receipt-{paper.width_mm}mm-{paper.profile}-{paper.columns}.png")
    (row,) = [r for r in preview.rows if isinstance(r, ImageRow) and r.image.height > 20]
    return row.image


@pytest.mark.parametrize(("paper", "dots", "cols"), PAPERS)
def test_settings_derive_dots_and_columns(paper: PaperSettings, dots: int, cols: int) -> None:
    assert (paper.dots, paper.columns) == (dots, cols)


@pytest.mark.parametrize(("paper", "dots", "cols"), PAPERS)
def test_text_and_rules_fill_the_configured_columns(
    receipt: Receipt, paper: PaperSettings, dots: int, cols: int
) -> None:
    lines = interpret(render_receipt(receipt, paper), paper).text_lines
    assert "-" * cols in lines
    total = next(line for line in lines if line.startswith("TOTAL"))
    assert (len(total), total.split()) == (cols, ["TOTAL", "EUR", "26.08"])


@pytest.mark.parametrize(("paper", "dots", "cols"), PAPERS)
def test_raster_qr_is_centred_on_the_paper_with_a_four_module_quiet_zone(
    receipt: Receipt, paper: PaperSettings, dots: int, cols: int
) -> None:
    image = qr_row(receipt, paper)
    assert image.width == dots  # the raster spans the printable width, not the model's widest
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [PAYLOAD]
    left, top, right, bottom = ImageOps.invert(image).getbbox()  # the dark modules
    module = paper.qr_module
    assert (right - left) % module == 0
    assert abs(left - (dots - right)) <= 1  # centred to the dot
    assert left >= QUIET_ZONE * module
    assert top >= QUIET_ZONE * module  # above …
    assert image.height - bottom >= QUIET_ZONE * module  # … and below, inside the image


def test_native_qr_is_centred_with_four_modules_fed_around_it(receipt: Receipt) -> None:
    paper = PaperSettings(width_mm=58, qr_native=True, qr_module=5)
    data = render_receipt(receipt, paper)
    feed = b"\x1bJ" + bytes((QUIET_ZONE * 5,))
    assert b"\x1ba\x01" + feed + b"\x1d(k" in data
    preview = interpret(data, paper)
    rows = preview.rows
    at = next(i for i, r in enumerate(rows) if isinstance(r, ImageRow) and r.image.width > 20)
    assert rows[at].align == "center"  # type: ignore[union-attr]
    assert rows[at - 1].image.height == rows[at + 1].image.height == 20  # type: ignore[union-attr]
    assert preview.qr_payloads == [PAYLOAD]


@pytest.mark.parametrize(
    "paper", [pytest.param(PaperSettings(width_mm=58), id="58"), pytest.param(PaperSettings())]
)
def test_text_receipt_and_test_page_lay_out_to_the_paper(paper: PaperSettings) -> None:
    wide = "x" * 60
    text = interpret(render_text(f"{wide}\nshort", paper=paper, qr_payload=PAYLOAD), paper)
    assert text.text_lines[:2] == ["x" * paper.columns, "short"]
    page = interpret(render_test_page(paper), paper)
    assert "".join(str(i % 10) for i in range(paper.columns)) in page.text_lines
    assert all(len(r.text) * r.width <= paper.columns for r in page.rows if isinstance(r, TextLine))
    (qr,) = [r for r in page.rows if isinstance(r, ImageRow) and r.image.height > 20]
    assert qr.image.width == paper.dots


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"width_mm": 58, "columns": 42}, "columns must be 32 on 58 mm", id="cols"),
        pytest.param({"width_mm": 80, "columns": 32}, "must be 42 or 48 on 80 mm", id="cols80"),
        pytest.param({"width_mm": 58, "dots": 576}, "multiple of 8 up to 384", id="dots"),
        pytest.param({"dots": 575}, "multiple of 8", id="dots-odd"),
        pytest.param({"profile": "TM-T88V", "dots": 576}, "wider than the TM-T88V", id="model"),
        pytest.param({"profile": "TM-X1"}, "not a python-escpos printer profile", id="profile"),
        pytest.param({"width_mm": 76}, "width_mm", id="width"),
        pytest.param({"cjk": "utf-8"}, "cjk", id="cjk"),
        pytest.param({"colums": 42}, "colums", id="typo"),
    ],
)
def test_a_wrong_paper_setting_names_what_to_set(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PaperSettings.model_validate(settings)
