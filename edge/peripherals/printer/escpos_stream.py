"""Split an ESC/POS byte stream into commands and text runs.

How it works: ESC/POS has no framing; each command's length follows from its first bytes
(Epson "ESC/POS Application Programming Guide" command reference). ``tokenize`` walks the buffer
with the length rules of the subset python-escpos emits plus the real-time status requests, and
stops at a command that is not complete yet, returning how far it got so a stream reader can
keep the tail for the next chunk. Knowing the lengths matters: raster image data can contain
``10 04`` and a printer (or our simulator) must not answer it as a DLE EOT status request.
"""

from __future__ import annotations

from dataclasses import dataclass

ESC, GS, DLE, FS = 0x1B, 0x1D, 0x10, 0x1C

# Fixed total lengths of ESC x / GS x commands (prefix byte included).
_ESC_LENGTHS = {
    b"@": 2, b"2": 2, b"!": 3, b"E": 3, b"-": 3, b"M": 3, b"a": 3, b"t": 3, b"{": 3,
    b"3": 3, b"+": 3, b"A": 3, b"d": 3, b"J": 3, b"r": 3, b"=": 3, b"G": 3, b"V": 3,
    b"p": 5, b"B": 4, b"c": 4, b"i": 2, b"m": 2, b"K": 3, b"D": 2, b"\x1b": 2,
}  # fmt: skip
_GS_LENGTHS = {
    b"!": 3, b"B": 3, b"b": 3, b"|": 3, b"H": 3, b"f": 3, b"h": 3, b"w": 3, b"P": 4,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Token:
    """A command (``prefix`` like ``b"\\x1ba"``, ``args``) or a text run (``prefix == b""``)."""

    prefix: bytes
    args: bytes = b""


def _command_length(buf: bytes | bytearray, i: int) -> int | None:
    """Total length of the command at ``buf[i]``, or None when more bytes are needed."""
    n = len(buf) - i
    if n < 2:
        return None
    first, second = buf[i], bytes(buf[i + 1 : i + 2])
    if first == DLE:
        return 3 if n >= 3 else None  # DLE EOT n, DLE ENQ n, DLE DC4 … (we read 3)
    if first == ESC:
        if second == b"*":  # ESC * m nL nH d1…dk, k = n * (3 for 24-dot modes else 1)
            if n < 5:
                return None
            dots = buf[i + 3] | (buf[i + 4] << 8)
            return 5 + dots * (3 if buf[i + 2] in (32, 33) else 1)
        return _ESC_LENGTHS.get(second, 2)
    if first == FS:
        return 2
    # GS
    if second == b"V":  # GS V m | GS V m n (m = 65, 66)
        if n < 3:
            return None
        return 4 if buf[i + 2] in (65, 66) else 3
    if second == b"v":  # GS v 0 m xL xH yL yH d1…dk, k = x * y
        if n < 8:
            return None
        x = buf[i + 4] | (buf[i + 5] << 8)
        y = buf[i + 6] | (buf[i + 7] << 8)
        return 8 + x * y
    if second == b"(":  # GS ( k/L pL pH …
        if n < 5:
            return None
        return 5 + (buf[i + 3] | (buf[i + 4] << 8))
    if second == b"k":  # GS k m … NUL (m < 65) | GS k m n d1…dn
        if n < 3:
            return None
        if buf[i + 2] >= 65:
            return 4 + buf[i + 3] if n >= 4 else None
        end = bytes(buf).find(b"\x00", i + 3)
        return None if end < 0 else end - i + 1
    return _GS_LENGTHS.get(second, 2)


def tokenize(buf: bytes | bytearray) -> tuple[list[Token], int]:
    """Tokens of every complete command and text run in ``buf``, and the bytes they used."""
    tokens: list[Token] = []
    i = 0
    end = len(buf)
    while i < end:
        byte = buf[i]
        if byte in (ESC, GS, DLE, FS):
            length = _command_length(buf, i)
            if length is None or i + length > end:
                break
            tokens.append(Token(bytes(buf[i : i + 2]), bytes(buf[i + 2 : i + length])))
            i += length
            continue
        j = i
        while j < end and buf[j] not in (ESC, GS, DLE, FS):
            j += 1
        tokens.append(Token(b"", bytes(buf[i:j])))
        i = j
    return tokens, i
