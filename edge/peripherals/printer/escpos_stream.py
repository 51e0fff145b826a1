"""Split an ESC/POS byte stream into commands and text runs, sized by a table of the commands.

How it works: ESC/POS has no framing. A command starts with ESC (1B), GS (1D), FS (1C) or, for
the real-time commands, DLE (10); its second byte names it, and its length follows from the
Epson "ESC/POS Command Reference" (paper-roll models) entry for that command. :data:`COMMANDS`
is that reference as a table: each row is the two prefix bytes, the command's name and its
*shape*, a small sizer that tells how many parameter bytes follow the prefix, reading the
parameters that carry a count (``pL pH``, ``xL xH yL yH``, ``p1 p2 p3 p4`` …) or that select
a variant (``DLE EOT n``, ``DLE DC4 fn``, ``GS V m``, ``GS k m``). :func:`tokenize` walks a
buffer with the table and stops at a command that is not complete yet, returning how far it
got, so a stream reader keeps the tail for the next chunk (feeding one byte at a time gives
the same commands).

Why a table: a printer acts on ``10 04 n`` wherever it appears, but a *reader* of the stream
(our simulator, the preview) must know where each command ends, or the bytes of a raster image,
a barcode or a ``GS ( L`` parameter look like a status request that was never sent.

Shapes (bytes after the two prefix bytes)::

    fixed(n)                 n parameter bytes                    ESC a n, GS L nL nH
    counted(h, size)         h header bytes, then size(header)    GS ( L pL pH …, GS v 0 …
    until_nul(skip)          up to and including a NUL            ESC D n1…nk NUL, GS k m … NUL
    by_first({v: shape})     the first parameter picks the shape  DLE EOT n [a], GS V m [n]

Real-time requests the printer *answers* (``DLE EOT``, ``DLE DC4``, ``GS r``, ``GS I``,
``ESC u``, ``ESC v``) are flagged ``answers=True``. Commands python-escpos emits that are not in
Epson's reference (``GS |``, ``ESC B``, ``ESC A``, ``ESC +``) are in the table too, marked so.
An unknown ``ESC``/``GS``/``FS`` x is taken as two bytes and reported with ``known=False``; a
``DLE`` not followed by EOT, ENQ or DC4 is a lone control byte.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

ESC, GS, DLE, FS = 0x1B, 0x1D, 0x10, 0x1C
STARTS = frozenset((ESC, GS, DLE, FS))
_REALTIME = frozenset((0x04, 0x05, 0x14))  # DLE EOT, DLE ENQ, DLE DC4

Buffer = bytes | bytearray | memoryview
#: How many parameter bytes follow the prefix that starts at ``buf[at - 2]``; None: need more.
Sizer = Callable[[Buffer, int], int | None]


def _le(*octets: int) -> int:
    """Little-endian unsigned integer of parameter bytes (nL nH, p1 p2 p3 p4)."""
    return sum(b << (8 * i) for i, b in enumerate(octets))


def fixed(n: int) -> Sizer:
    """Always ``n`` parameter bytes."""

    def size(buf: Buffer, at: int) -> int:
        return n

    return size


def counted(header: int, data: Callable[[bytes], int]) -> Sizer:
    """``header`` bytes, then as many data bytes as ``data(header bytes)`` says."""

    def size(buf: Buffer, at: int) -> int | None:
        if len(buf) - at < header:
            return None
        return header + data(bytes(buf[at : at + header]))

    return size


def until_nul(skip: int = 0) -> Sizer:
    """``skip`` bytes, then everything up to and including the next NUL."""

    def size(buf: Buffer, at: int) -> int | None:
        for j in range(at + skip, len(buf)):
            if buf[j] == 0:
                return j - at + 1
        return None

    return size


def by_first(shapes: Mapping[int, Sizer], default: Sizer) -> Sizer:
    """The first parameter byte selects the shape (measured from that byte on)."""

    def size(buf: Buffer, at: int) -> int | None:
        if len(buf) - at < 1:
            return None
        return shapes.get(buf[at], default)(buf, at)

    return size


def _user_characters(buf: Buffer, at: int) -> int | None:
    """ESC & y c1 c2 [x d1…d(y×x)] for each character c1…c2."""
    if len(buf) - at < 3:
        return None
    y, c1, c2 = buf[at], buf[at + 1], buf[at + 2]
    j = at + 3
    for _ in range(max(c2 - c1 + 1, 0)):
        if j >= len(buf):
            return None
        j += 1 + y * buf[j]
    return j - at


def _nv_images(buf: Buffer, at: int) -> int | None:
    """FS q n [xL xH yL yH d1…dk]1 … [xL xH yL yH d1…dk]n, k = x × y × 8."""
    if len(buf) - at < 1:
        return None
    j = at + 1
    for _ in range(buf[at]):
        if len(buf) - j < 4:
            return None
        j += 4 + _le(buf[j], buf[j + 1]) * _le(buf[j + 2], buf[j + 3]) * 8
    return j - at


def _bit_image(h: bytes) -> int:
    """ESC * m nL nH: n columns of 1 byte (8-dot modes 0, 1) or 3 bytes (24-dot modes 32, 33)."""
    return _le(h[1], h[2]) * (3 if h[0] in (32, 33) else 1)


_FUNCTION = counted(3, lambda h: _le(h[1], h[2]))  # GS ( fn pL pH …, ESC ( fn …, FS ( fn …


@dataclass(frozen=True, slots=True)
class Command:
    """One row of the command table."""

    name: str
    size: Sizer
    answers: bool = False  # a real-time request the printer answers with status bytes
    epson: bool = True  # False: emitted by python-escpos, not in Epson's reference


def _row(name: str, size: Sizer, **kw: bool) -> Command:
    return Command(name, size, **kw)


#: The command table: prefix bytes → name and shape. From the Epson ESC/POS Command Reference
#: (TM paper-roll printers), plus the few non-Epson commands python-escpos sends.
COMMANDS: Mapping[bytes, Command] = {
    # real-time commands (executed on receipt, even inside other data)
    b"\x10\x04": _row(
        "DLE EOT n [a]", by_first({7: fixed(2), 8: fixed(2)}, fixed(1)), answers=True
    ),
    b"\x10\x05": _row("DLE ENQ n", fixed(1)),
    b"\x10\x14": _row(
        "DLE DC4 fn …",
        by_first({1: fixed(3), 2: fixed(3), 7: fixed(2), 8: fixed(8)}, fixed(1)),
        answers=True,
    ),
    # ESC x
    b"\x1b\x0c": _row("ESC FF", fixed(0)),
    b"\x1b ": _row("ESC SP n", fixed(1)),
    b"\x1b!": _row("ESC ! n", fixed(1)),
    b"\x1b$": _row("ESC $ nL nH", fixed(2)),
    b"\x1b%": _row("ESC % n", fixed(1)),
    b"\x1b&": _row("ESC & y c1 c2 [x d…]…", _user_characters),
    b"\x1b(": _row("ESC ( fn pL pH …", _FUNCTION),
    b"\x1b*": _row("ESC * m nL nH d…", counted(3, _bit_image)),
    b"\x1b-": _row("ESC - n", fixed(1)),
    b"\x1b2": _row("ESC 2", fixed(0)),
    b"\x1b3": _row("ESC 3 n", fixed(1)),
    b"\x1b<": _row("ESC <", fixed(0)),
    b"\x1b=": _row("ESC = n", fixed(1)),
    b"\x1b?": _row("ESC ? n", fixed(1)),
    b"\x1b@": _row("ESC @", fixed(0)),
    b"\x1bD": _row("ESC D n1…nk NUL", until_nul()),
    b"\x1bE": _row("ESC E n", fixed(1)),
    b"\x1bG": _row("ESC G n", fixed(1)),
    b"\x1bJ": _row("ESC J n", fixed(1)),
    b"\x1bK": _row("ESC K n", fixed(1)),
    b"\x1bL": _row("ESC L", fixed(0)),
    b"\x1bM": _row("ESC M n", fixed(1)),
    b"\x1bR": _row("ESC R n", fixed(1)),
    b"\x1bS": _row("ESC S", fixed(0)),
    b"\x1bT": _row("ESC T n", fixed(1)),
    b"\x1bU": _row("ESC U n", fixed(1)),
    b"\x1bV": _row("ESC V n", fixed(1)),
    b"\x1bW": _row("ESC W xL xH yL yH dxL dxH dyL dyH", fixed(8)),
    b"\x1b\\": _row("ESC \\ nL nH", fixed(2)),
    b"\x1ba": _row("ESC a n", fixed(1)),
    b"\x1bc": _row("ESC c n m", fixed(2)),  # ESC c 0/1/3/4/5 n
    b"\x1bd": _row("ESC d n", fixed(1)),
    b"\x1be": _row("ESC e n", fixed(1)),
    b"\x1bf": _row("ESC f t1 t2", fixed(2)),
    b"\x1bi": _row("ESC i", fixed(0)),
    b"\x1bm": _row("ESC m", fixed(0)),
    b"\x1bp": _row("ESC p m t1 t2", fixed(3)),
    b"\x1br": _row("ESC r n", fixed(1)),
    b"\x1bt": _row("ESC t n", fixed(1)),
    b"\x1bu": _row("ESC u n", fixed(1), answers=True),
    b"\x1bv": _row("ESC v", fixed(0), answers=True),
    b"\x1b{": _row("ESC { n", fixed(1)),
    b"\x1bA": _row("ESC A n (ESC/P line spacing)", fixed(1), epson=False),
    b"\x1b+": _row("ESC + n (ESC/P line spacing)", fixed(1), epson=False),
    b"\x1bB": _row("ESC B n t (buzzer)", fixed(2), epson=False),
    # GS x
    b"\x1d!": _row("GS ! n", fixed(1)),
    b"\x1d$": _row("GS $ nL nH", fixed(2)),
    b"\x1d(": _row("GS ( fn pL pH …", _FUNCTION),
    b"\x1d*": _row("GS * x y d…", counted(2, lambda h: h[0] * h[1] * 8)),
    b"\x1d/": _row("GS / m", fixed(1)),
    b"\x1d:": _row("GS :", fixed(0)),
    b"\x1d8": _row("GS 8 L p1 p2 p3 p4 …", counted(5, lambda h: _le(*h[1:5]))),
    b"\x1dB": _row("GS B n", fixed(1)),
    b"\x1dE": _row("GS E n", fixed(1)),
    b"\x1dH": _row("GS H n", fixed(1)),
    b"\x1dI": _row("GS I n", fixed(1), answers=True),
    b"\x1dL": _row("GS L nL nH", fixed(2)),
    b"\x1dP": _row("GS P x y", fixed(2)),
    b"\x1dT": _row("GS T n", fixed(1)),
    b"\x1dV": _row(
        "GS V m [n]", by_first({m: fixed(2) for m in (65, 66, 97, 98, 103, 104)}, fixed(1))
    ),
    b"\x1dW": _row("GS W nL nH", fixed(2)),
    b"\x1d\\": _row("GS \\ nL nH", fixed(2)),
    b"\x1d^": _row("GS ^ r t m", fixed(3)),
    b"\x1da": _row("GS a n", fixed(1)),
    b"\x1db": _row("GS b n", fixed(1)),
    b"\x1dc": _row("GS c", fixed(0)),
    b"\x1df": _row("GS f n", fixed(1)),
    b"\x1dg": _row("GS g 0|2 m nL nH", fixed(4)),
    b"\x1dh": _row("GS h n", fixed(1)),
    b"\x1dj": _row("GS j n", fixed(1)),
    b"\x1dk": _row(
        "GS k m …",  # m 0-6: d1…dk NUL; m 65-79: n d1…dn
        by_first(
            {m: until_nul(skip=1) for m in range(7)}, counted(2, lambda h: h[1])
        ),
    ),
    b"\x1dr": _row("GS r n", fixed(1), answers=True),
    b"\x1dv": _row("GS v 0 m xL xH yL yH d…", counted(6, lambda h: _le(*h[2:4]) * _le(*h[4:6]))),
    b"\x1dw": _row("GS w n", fixed(1)),
    b"\x1dz": _row("GS z 0 t1 t2", fixed(3)),
    b"\x1d|": _row("GS | n (print density)", fixed(1), epson=False),
    # FS x (Kanji / double-byte characters, NV memory)
    b"\x1c!": _row("FS ! n", fixed(1)),
    b"\x1c&": _row("FS &", fixed(0)),
    b"\x1c(": _row("FS ( fn pL pH …", _FUNCTION),
    b"\x1c-": _row("FS - n", fixed(1)),
    b"\x1c.": _row("FS .", fixed(0)),
    b"\x1c2": _row("FS 2 c1 c2 d1…d72", fixed(74)),
    b"\x1c?": _row("FS ? c1 c2", fixed(2)),
    b"\x1cC": _row("FS C n", fixed(1)),
    b"\x1cS": _row("FS S n1 n2", fixed(2)),
    b"\x1cW": _row("FS W n", fixed(1)),
    b"\x1cg": _row(
        "FS g 1|2 m a1 a2 a3 a4 nL nH …",
        by_first({0x31: counted(8, lambda h: _le(h[6], h[7]))}, fixed(8)),
    ),
    b"\x1cp": _row("FS p n m", fixed(2)),
    b"\x1cq": _row("FS q n [xL xH yL yH d…]…", _nv_images),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Token:
    """A command (``prefix`` like ``b"\\x1ba"``, ``args``) or a text run (``prefix == b""``)."""

    prefix: bytes
    args: bytes = b""

    @property
    def known(self) -> bool:
        """A text run or a command in :data:`COMMANDS`."""
        return not self.prefix or self.prefix in COMMANDS

    @property
    def answers(self) -> bool:
        """A real-time request the printer answers (status, ID …)."""
        command = COMMANDS.get(self.prefix)
        return command is not None and command.answers

    @property
    def raw(self) -> bytes:
        """The bytes of the token as they were in the stream."""
        return self.prefix + self.args


def command_length(buf: Buffer, i: int) -> int | None:
    """Total length of the command starting at ``buf[i]``, or None when more bytes are needed."""
    if len(buf) - i < 2:
        return None
    if buf[i] == DLE and buf[i + 1] not in _REALTIME:
        return 1  # a lone DLE is a control byte, not a command
    command = COMMANDS.get(bytes(buf[i : i + 2]))
    if command is None:
        return 2
    params = command.size(buf, i + 2)
    return None if params is None else 2 + params


def tokenize(buf: Buffer) -> tuple[list[Token], int]:
    """Tokens of every complete command and text run in ``buf``, and the bytes they used."""
    tokens: list[Token] = []
    i = 0
    end = len(buf)
    while i < end:
        if buf[i] in STARTS:
            length = command_length(buf, i)
            if length is None or i + length > end:
                break
            head = min(length, 2)
            tokens.append(Token(bytes(buf[i : i + head]), bytes(buf[i + head : i + length])))
            i += length
            continue
        j = i
        while j < end and buf[j] not in STARTS:
            j += 1
        tokens.append(Token(b"", bytes(buf[i:j])))
        i = j
    return tokens, i
