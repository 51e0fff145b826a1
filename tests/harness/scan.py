"""Read an enrolment QR code back from its image the way a store's 2D scanner set to QR would.

zxing looks for every symbology by default, and about one random enrolment QR in 1,500 also
yields a spurious Codabar read from a run of its modules. A store scanner for enrolment is set to
QR, so the tests read QR only.
"""

from __future__ import annotations

import io

import zxingcpp
from PIL import Image

QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


def read_qr_codes(image: bytes | Image.Image) -> list[str]:
    """The text of every QR code in `image` (PNG bytes or a PIL image)."""
    picture = Image.open(io.BytesIO(image)) if isinstance(image, bytes) else image
    return [str(found.text) for found in zxingcpp.read_barcodes(picture, formats=QR_ONLY)]
