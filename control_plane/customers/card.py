"""A customer's loyalty card as a QR code for printing (PNG, SVG): its payload SFC1:<id>."""

from __future__ import annotations

import io

import segno

from protocols.customer_card import format_customer_card

#: Modules of white around the code, as the QR standard asks (4): scanners need it.
QUIET_ZONE = 4


def card_png(customer_id: str, *, scale: int = 8) -> bytes:
    """The card's QR code as a PNG, ``scale`` pixels per module.

    The payload is all upper case, digits and ':' (QR's alphanumeric mode), so a version-1 code
    with error correction M holds it: small enough for a key-ring tag.
    """
    code = segno.make_qr(format_customer_card(customer_id), error="m", boost_error=True)
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=scale, border=QUIET_ZONE)
    return buffer.getvalue()
