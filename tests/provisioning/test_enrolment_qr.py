"""QR rendering, read back by a real decoder (zxing-cpp) and parsed into the same payload."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest
from PIL import Image

from provisioning.enrolment import EnrolmentPayload, new_enrolment, parse_qr
from provisioning.qr import SHEET_SIZE, EnrolmentSheet, render_png, render_sheet, render_svg
from tests.harness.scan import read_qr_codes


@pytest.fixture
def sheet(now: datetime) -> EnrolmentSheet:
    created = new_enrolment(
        tenant_id="tenant-1",
        store_id="store-7",
        control_plane_url="https://fleet.example.com",
        ca_fingerprint="e3" * 32,
        now=now,
    )
    return EnrolmentSheet(
        store_name="Corner Shop, 12 High Street",
        payload=created.payload,
        fallback_code=created.fallback_code,
        expires_at=created.record.expires_at,
    )


def _decode(image: Image.Image) -> EnrolmentPayload:
    (text,) = read_qr_codes(image)
    return parse_qr(text)


def test_png_decodes_back_to_the_same_payload(sheet: EnrolmentSheet) -> None:
    image = Image.open(io.BytesIO(render_png(sheet.payload)))

    assert _decode(image) == sheet.payload


def test_small_png_still_decodes(sheet: EnrolmentSheet) -> None:
    image = Image.open(io.BytesIO(render_png(sheet.payload, scale=2)))

    assert _decode(image) == sheet.payload


def test_svg_is_a_standalone_svg_document(sheet: EnrolmentSheet) -> None:
    root = ET.fromstring(render_svg(sheet.payload))

    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_sheet_png_holds_a_decodable_qr(sheet: EnrolmentSheet) -> None:
    image = Image.open(io.BytesIO(render_sheet(sheet, kind="png")))

    assert image.size == SHEET_SIZE
    assert _decode(image) == sheet.payload


def test_sheet_pdf_is_one_page(sheet: EnrolmentSheet) -> None:
    pdf = render_sheet(sheet, kind="pdf")

    assert pdf.startswith(b"%PDF-")
    assert b"/Count 1" in pdf
