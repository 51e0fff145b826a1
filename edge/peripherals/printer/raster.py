"""Raster images laid out on the configured paper: the receipt QR code and barcodes.

How it works: an image is pasted in the middle of a white canvas exactly ``dots`` wide (the
printable width from :class:`PaperSettings`) and sent as ``GS v 0`` raster data, so it is
centred on the paper actually loaded, whatever the printer's alignment setting or the model's
widest paper (python-escpos centres on the profile's width: 576 dots under 384-dot text on a
58 mm roll). The QR code carries a quiet zone of four modules on every side, as ISO/IEC 18004
asks, inside the image itself. ``GS v 0`` bit 1 is a black dot; rows are MSB first.
"""

from __future__ import annotations

import segno
from barcode import Code128  # python-barcode, installed with python-escpos
from barcode.writer import ImageWriter
from PIL import Image

QUIET_ZONE = 4  # modules, ISO/IEC 18004 §9.1
QR_ERROR = "m"  # level M: survives a smudge on thermal paper, still version 1-2 for our codes
MAX_ROWS = 1024  # rows per GS v 0 command (Epson allows up to 2303)
_INVERT = bytes(255 - b for b in range(256))  # PIL "1": 1 = white; ESC/POS: 1 = black


def raster(image: Image.Image, *, dots: int) -> bytes:
    """``GS v 0`` commands printing ``image`` centred on a line ``dots`` wide."""
    if dots % 8:
        raise ValueError(f"raster width {dots} is not a multiple of 8")
    if image.width > dots:
        raise ValueError(f"image is {image.width} dots wide, the paper {dots}")
    canvas = Image.new("1", (dots, image.height), 1)
    canvas.paste(image.convert("1"), ((dots - image.width) // 2, 0))
    data = canvas.tobytes().translate(_INVERT)
    width_bytes = dots // 8
    out = bytearray()
    for top in range(0, image.height, MAX_ROWS):
        rows = min(MAX_ROWS, image.height - top)
        out += b"\x1dv0\x00" + width_bytes.to_bytes(2, "little") + rows.to_bytes(2, "little")
        out += data[top * width_bytes : (top + rows) * width_bytes]
    return bytes(out)


def qr_image(payload: str, *, module: int, dots: int) -> Image.Image:
    """The QR code of ``payload`` with its quiet zone; modules shrink if the paper is narrow."""
    qr = segno.make_qr(payload, error=QR_ERROR, boost_error=False)
    size = int(qr.symbol_size(scale=1, border=QUIET_ZONE)[0])  # modules, quiet zone included
    scale = min(module, dots // size)
    if scale < 1:
        raise ValueError(f"a QR code of {size} modules does not fit on {dots} dots")
    modules = bytes(0 if dark else 255 for row in qr.matrix_iter(border=QUIET_ZONE) for dark in row)
    image = Image.frombytes("L", (size, size), modules)
    return image.resize((size * scale, size * scale), Image.Resampling.NEAREST).convert("1")


def qr_raster(payload: str, *, module: int, dots: int) -> bytes:
    """The QR code of ``payload``, quiet zone included, centred on ``dots``."""
    return raster(qr_image(payload, module=module, dots=dots), dots=dots)


def code128_image(data: str, *, dpi: int) -> Image.Image:
    """A CODE128 barcode rendered by python-barcode at the printer's resolution."""
    image = Code128(data, writer=ImageWriter()).render(
        writer_options={
            "module_height": 8,
            "module_width": 0.25,
            "quiet_zone": 2.5,
            "text_distance": 4,
            "font_size": 8,
            "dpi": dpi,
        }
    )
    if not isinstance(image, Image.Image):
        raise TypeError("python-barcode's ImageWriter did not return an image")
    return image
