"""Turn the ESC/POS bytes we send back into what the paper would show: a text layer and a PNG.

How it works: :func:`interpret` runs the token stream from :mod:`.escpos_stream` through a tiny
printer state machine (alignment, bold, character size, code page, double-byte mode) and
collects *rows*: text lines with their style, raster images (``GS v 0``, ``GS ( L``), natively
printed QR codes (``GS ( k``, drawn with segno, no quiet zone of their own), paper fed by
``ESC J`` and cuts. Text bytes are decoded as the configured printer would: through the code
page tables of its profile (:mod:`.profile`) and, between ``FS &`` and ``FS .``, in pairs in its
double-byte encoding. :meth:`Preview.to_png` lays the rows out on a canvas as wide as the
paper's printable dots. Tests read the text layer and decode the QR code from the PNG; people
look at the PNG. Commands the preview does not draw are listed in ``unknown``; text or modes the
printer could not print (a code page it lacks, a byte its page does not define, a double-byte
character without such a mode) are listed in ``unsupported`` and shown as U+FFFD.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont

from edge.checkout.text_columns import columns
from edge.peripherals.printer.escpos_stream import Token, tokenize
from edge.peripherals.printer.profile import PrinterProfile
from edge.peripherals.printer.settings import PaperSettings

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_ALIGN = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}
_QR_ERROR = {48: "l", 49: "m", 50: "q", 51: "h"}  # GS ( k fn 69 n
BAD = "\ufffd"


@dataclass(frozen=True, slots=True)
class TextLine:
    """One printed line of text and the style it was printed with."""

    text: str
    align: str = "left"
    bold: bool = False
    width: int = 1
    height: int = 1


@dataclass(frozen=True, slots=True)
class ImageRow:
    """A bitmap the printer prints (raster image or rendered QR code)."""

    image: Image.Image
    align: str = "left"


@dataclass(frozen=True, slots=True)
class Cut:
    """A paper cut."""


Row = TextLine | ImageRow | Cut


@dataclass(slots=True)
class Preview:
    """What a print job would put on paper."""

    rows: list[Row] = field(default_factory=list)
    drawer_kicks: list[int] = field(default_factory=list)
    qr_payloads: list[str] = field(default_factory=list)
    status_queries: list[int] = field(default_factory=list)
    unknown: list[bytes] = field(default_factory=list)
    unsupported: list[bytes] = field(default_factory=list)
    paper_dots: int = 512
    columns: int = 42

    @property
    def text_lines(self) -> list[str]:
        """The text of every printed line, in order (blank lines included)."""
        return [r.text for r in self.rows if isinstance(r, TextLine)]

    @property
    def cuts(self) -> int:
        """How many cuts the job made."""
        return sum(isinstance(r, Cut) for r in self.rows)

    def to_png(self, path: Path | None = None) -> Image.Image:
        """Lay the rows out on a paper-wide canvas; save it when ``path`` is given."""
        cell = max(self.paper_dots // self.columns, 6)
        rendered = [_render_row(r, self.paper_dots, cell) for r in self.rows]
        margin = 16
        canvas = Image.new(
            "L", (self.paper_dots, sum(i.height for i in rendered) + 2 * margin), 255
        )
        y = margin
        for row, img in zip(self.rows, rendered, strict=True):
            align = "left" if isinstance(row, Cut) else row.align
            x = {"left": 0, "center": (self.paper_dots - img.width) // 2}.get(
                align, self.paper_dots - img.width
            )
            canvas.paste(img, (max(x, 0), y))
            y += img.height
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            canvas.save(path)
        return canvas


@functools.cache
def _font(size: int, bold: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    try:
        return ImageFont.truetype(str(_FONT_DIR / name), size)
    except OSError:
        return ImageFont.load_default(size=size)


def _render_row(row: Row, paper_dots: int, cell: int) -> Image.Image:
    if isinstance(row, Cut):
        img = Image.new("L", (paper_dots, 12), 255)
        ImageDraw.Draw(img).line([(0, 6), (paper_dots, 6)], fill=128, width=1)
        return img
    if isinstance(row, ImageRow):
        return row.image.convert("L")
    line_height = cell * 2
    base = Image.new("L", (max(cell * columns(row.text), 1), line_height), 255)
    ImageDraw.Draw(base).text((0, 2), row.text, fill=0, font=_font(int(cell * 1.6), row.bold))
    return base.resize((base.width * row.width, line_height * row.height))


@dataclass(slots=True)
class _State:
    align: str = "left"
    bold: bool = False
    width: int = 1
    height: int = 1
    codepage: int = 0
    kanji: bool = False
    lead: int | None = None  # first byte of a double-byte character
    line: list[str] = field(default_factory=list)
    qr_data: bytes = b""
    qr_module: int = 3
    qr_error: str = "l"
    graphics: bytes = b""


def interpret(data: bytes, paper: PaperSettings | None = None) -> Preview:
    """Run a whole job through a model of the configured printer and paper."""
    paper = paper or PaperSettings()
    profile = PrinterProfile.for_paper(paper)
    preview = Preview(paper_dots=paper.dots, columns=paper.columns)
    state = _State()
    tokens, _ = tokenize(data)
    for token in tokens:
        _apply(token, state, preview, profile)
    _flush(state, preview, force=False)
    return preview


def _flush(state: _State, preview: Preview, *, force: bool) -> None:
    if state.line or force:
        preview.rows.append(
            TextLine("".join(state.line), state.align, state.bold, state.width, state.height)
        )
        state.line.clear()


def _text(raw: bytes, state: _State, preview: Preview, profile: PrinterProfile) -> None:
    table = profile.code_pages.get(state.codepage)
    for byte in raw:
        if state.lead is not None:
            pair, state.lead = bytes((state.lead, byte)), None
            try:
                state.line.append(pair.decode(profile.cjk or "ascii"))
            except UnicodeDecodeError:
                preview.unsupported.append(pair)
                state.line.append(BAD)
        elif byte == 0x0A:
            _flush(state, preview, force=True)
        elif byte == 0x0D:
            continue
        elif byte < 0x80:
            state.line.append(chr(byte) if byte >= 0x20 else "")
        elif state.kanji:
            state.lead = byte
        else:
            ch = table[byte - 0x80] if table else None
            if ch is None:
                preview.unsupported.append(bytes((state.codepage, byte)))
            state.line.append(ch or BAD)


def _raster(x_bytes: int, y: int, bits: bytes) -> Image.Image:
    # ESC/POS: 1 bit = black dot; PIL mode "1": 1 = white, so invert.
    img = Image.frombytes("1", (x_bytes * 8, y), bytes(b ^ 0xFF for b in bits))
    return img.convert("L")


def _apply(token: Token, state: _State, preview: Preview, profile: PrinterProfile) -> None:
    p, a = token.prefix, token.args
    if p == b"":
        _text(a, state, preview, profile)
    elif p == b"\x1b@":  # every mode back to its default
        state.align, state.bold, state.width, state.height, state.codepage = "left", False, 1, 1, 0
        state.kanji, state.lead = False, None
    elif p == b"\x1b!":
        state.bold = bool(a[0] & 0x08)
        state.height = 2 if a[0] & 0x10 else 1
        state.width = 2 if a[0] & 0x20 else 1
    elif p == b"\x1d!":
        state.width, state.height = (a[0] >> 4) + 1, (a[0] & 0x0F) + 1
    elif p == b"\x1bE":
        state.bold = bool(a[0] & 1)
    elif p == b"\x1ba":
        state.align = _ALIGN.get(a[0], "left")
    elif p == b"\x1bt":
        state.codepage = a[0]
        if a[0] not in profile.code_pages:
            preview.unsupported.append(token.raw)
    elif p == b"\x1c&":
        state.kanji = True
        if profile.cjk is None:
            preview.unsupported.append(token.raw)
    elif p == b"\x1c.":
        state.kanji, state.lead = False, None
    elif p == b"\x1bJ":  # print and feed a[0] dots
        _flush(state, preview, force=False)
        if a[0]:
            preview.rows.append(ImageRow(Image.new("L", (1, a[0]), 255), state.align))
    elif p == b"\x1bd":
        _flush(state, preview, force=True)
        preview.rows.extend(TextLine("", state.align) for _ in range(max(a[0] - 1, 0)))
    elif p == b"\x1dV":
        _flush(state, preview, force=False)
        preview.rows.append(Cut())
    elif p == b"\x1bp":
        preview.drawer_kicks.append(a[0])
    elif p == b"\x10\x04":
        preview.status_queries.append(a[0])
    elif p == b"\x1dv":
        _flush(state, preview, force=False)
        x, y = a[2] | (a[3] << 8), a[4] | (a[5] << 8)
        preview.rows.append(ImageRow(_raster(x, y, a[6:]), state.align))
    elif p == b"\x1d(" and a[:1] == b"k":
        _qr(a, state, preview)
    elif p == b"\x1d(" and a[:1] == b"L":
        _graphics(a, state, preview)
    elif p in (
        b"\x1b-", b"\x1bM", b"\x1b{", b"\x1b2", b"\x1b3", b"\x1dB", b"\x1db", b"\x1d|", b"\x1cC"
    ):  # fmt: skip
        pass  # style we do not draw (underline, font B, flip, spacing, invert, smooth, density)
    else:
        preview.unknown.append(p + a)


def _qr(a: bytes, state: _State, preview: Preview) -> None:
    # GS ( k pL pH cn fn [m] data: cn 49 = QR; fn 67 module size, 80 store, 81 print
    cn, fn = a[3], a[4]
    if cn != 49:
        preview.unknown.append(b"\x1d(" + a)
    elif fn == 67:
        state.qr_module = a[5]
    elif fn == 69:
        state.qr_error = _QR_ERROR.get(a[5], "l")
    elif fn == 80:
        state.qr_data = a[6:]
    elif fn == 81:
        payload = state.qr_data.decode("utf-8", "replace")
        preview.qr_payloads.append(payload)
        qr = segno.make_qr(payload, error=state.qr_error, boost_error=False)
        png = io.BytesIO()
        qr.save(png, kind="png", scale=state.qr_module, border=0)  # the printer adds none
        png.seek(0)
        img = Image.open(png)
        _flush(state, preview, force=False)
        preview.rows.append(ImageRow(img.convert("L"), state.align))


def _graphics(a: bytes, state: _State, preview: Preview) -> None:
    # GS ( L pL pH m fn …: fn 112 stores a raster (a bx by c xL xH yL yH d…), fn 50 prints it
    fn = a[4]
    if fn == 112:
        state.graphics = a[5:]
    elif fn == 50 and state.graphics:
        g = state.graphics
        width, height = g[4] | (g[5] << 8), g[6] | (g[7] << 8)
        preview.rows.append(ImageRow(_raster((width + 7) // 8, height, g[8:]), state.align))
        state.graphics = b""
