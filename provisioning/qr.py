"""The enrolment QR code, and the printable sheet a field tech takes to the store.

The QR code holds `encode_qr(payload)` in byte mode at error correction M or better (segno
raises it when the version allows), with the standard 4-module quiet zone: store scanners read it
from paper under counter lights, often creased. The sheet repeats what the tech may need if the
scan fails: the typed fallback code, the expiry and what to do, in plain words.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import segno
from PIL import Image, ImageDraw, ImageFont

from provisioning.enrolment import EnrolmentPayload, encode_qr

QUIET_ZONE = 4
SHEET_SIZE = (1240, 1754)  # A5 portrait at 212 dpi, prints sharp on office and label printers
SHEET_DPI = 212
MARGIN = 80
INSTRUCTIONS = (
    "Power on the new register and connect it to the store network.",
    "On the first-boot screen, scan the QR code above with the register's scanner.",
    "If it does not scan, choose “Type a code” and enter the code below it.",
    "This sheet enrols one register, once, until it expires. Shred it afterwards.",
)


def enrolment_qr(payload: EnrolmentPayload) -> segno.QRCode:
    """The QR code for `payload` (error correction at least M, byte mode)."""
    return segno.make_qr(encode_qr(payload), error="m", boost_error=True)


def render_svg(payload: EnrolmentPayload, *, scale: int = 8) -> bytes:
    """The QR code as a standalone SVG document (for the console and for print shops)."""
    buffer = io.BytesIO()
    enrolment_qr(payload).save(buffer, kind="svg", scale=scale, border=QUIET_ZONE, xmldecl=True)
    return buffer.getvalue()


def render_png(payload: EnrolmentPayload, *, scale: int = 8) -> bytes:
    """The QR code as a PNG, `scale` pixels per module."""
    buffer = io.BytesIO()
    enrolment_qr(payload).save(buffer, kind="png", scale=scale, border=QUIET_ZONE)
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class EnrolmentSheet:
    """What goes on the printed sheet besides the QR code."""

    store_name: str
    payload: EnrolmentPayload
    fallback_code: str
    expires_at: datetime


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled default font: no dependency on fonts installed on the server.
    return ImageFont.load_default(size=size)


def sheet_image(sheet: EnrolmentSheet) -> Image.Image:
    """The sheet as a white RGB image of SHEET_SIZE."""
    width, _ = SHEET_SIZE
    image = Image.new("RGB", SHEET_SIZE, "white")
    draw = ImageDraw.Draw(image)
    y = MARGIN
    draw.text((MARGIN, y), "Enrol a register", fill="black", font=_font(64))
    y += 84
    store_name = textwrap.shorten(sheet.store_name, width=44, placeholder="…")
    draw.text((MARGIN, y), store_name, fill="black", font=_font(44))
    y += 70
    # A whole number of pixels per module: scanners hate modules of uneven width.
    modules = int(enrolment_qr(sheet.payload).symbol_size(border=QUIET_ZONE)[0])
    scale = (width - 2 * MARGIN - 200) // modules
    qr = Image.open(io.BytesIO(render_png(sheet.payload, scale=scale))).convert("RGB")
    qr_size = qr.width
    image.paste(qr, ((width - qr_size) // 2, y))
    y += qr_size + 20
    code_font = _font(72)
    code_width = draw.textlength(sheet.fallback_code, font=code_font)
    draw.text(((width - code_width) / 2, y), sheet.fallback_code, fill="black", font=code_font)
    y += 100
    expiry = sheet.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    draw.text((MARGIN, y), f"Valid until {expiry}", fill="black", font=_font(36))
    y += 64
    body = _font(30)
    for number, step in enumerate(INSTRUCTIONS, start=1):
        for i, line in enumerate(textwrap.wrap(step, width=68)):
            prefix = f"{number}. " if i == 0 else "    "
            draw.text((MARGIN, y), prefix + line, fill="black", font=body)
            y += 40
        y += 8
    return image


def render_sheet(sheet: EnrolmentSheet, *, kind: Literal["png", "pdf"]) -> bytes:
    """The printable sheet as PNG or single-page PDF bytes."""
    buffer = io.BytesIO()
    image = sheet_image(sheet)
    if kind == "pdf":
        image.save(buffer, format="PDF", resolution=SHEET_DPI, title="storefleet enrolment")
    else:
        image.save(buffer, format="PNG", dpi=(SHEET_DPI, SHEET_DPI))
    return buffer.getvalue()
