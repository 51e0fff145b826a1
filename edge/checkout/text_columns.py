"""Text measured in printed columns: how wide a receipt line really is on a monospaced printer.

Why: a receipt printer prints East Asian Wide and Fullwidth characters (CJK ideographs, kana,
hangul, fullwidth forms, most emoji) two columns wide and puts combining marks on the character
before them, so ``len()`` put 47 columns on a 42-column line. Widths here follow Unicode's East
Asian Width property (UAX #11, ``unicodedata.east_asian_width``):

=========================================  =======
character                                  columns
=========================================  =======
East Asian Wide (W) or Fullwidth (F)       2
combining mark (Mn, Me), format char (Cf)  0
anything else, Ambiguous (A) included      1
=========================================  =======

Ambiguous characters count 1 because receipt printers print them from single-byte code pages.
A printer that cannot print a character replaces it with as many columns as it had (see
``edge.peripherals.printer.profile``), so a line laid out here keeps its width on paper.
:func:`clean` turns control and line-breaking characters into ``?``: an item name can neither
break a receipt line nor carry an ESC/POS command.
"""

from __future__ import annotations

import functools
import unicodedata

_ZERO = frozenset(("Mn", "Me", "Cf"))
_REPLACED = frozenset(("Cc", "Cs", "Zl", "Zp"))  # controls, lone surrogates, U+2028/2029


@functools.lru_cache(maxsize=4096)
def char_columns(ch: str) -> int:
    """Printed columns of one character."""
    if unicodedata.category(ch) in _ZERO:
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def columns(text: str) -> int:
    """Printed columns of ``text`` (one line)."""
    if text.isascii():
        return len(text)
    return sum(char_columns(ch) for ch in text)


def clean(text: str) -> str:
    """``text`` in NFC with control and line-breaking characters replaced by ``?``."""
    text = unicodedata.normalize("NFC", text)
    if text.isascii() and text.isprintable():
        return text
    return "".join("?" if unicodedata.category(ch) in _REPLACED else ch for ch in text)


def fit(text: str, width: int, *, ellipsis: str = "") -> str:
    """``text`` cut to at most ``width`` columns; a cut text ends with ``ellipsis``.

    A wide character that would straddle the limit is left out whole, so the result can be one
    column short of ``width``.
    """
    if columns(text) <= width:
        return text
    room = width - columns(ellipsis)
    if room < 0:
        return fit(text, width)
    used = 0
    out = []
    for ch in text:
        w = char_columns(ch)
        if used + w > room:
            break
        out.append(ch)
        used += w
    return "".join(out) + ellipsis


def pad_right(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` columns (like ``str.ljust``)."""
    return text + " " * max(width - columns(text), 0)


def pad_left(text: str, width: int) -> str:
    """Spaces, then ``text``, ending at ``width`` columns (like ``str.rjust``)."""
    return " " * max(width - columns(text), 0) + text


def center(text: str, width: int) -> str:
    """``text`` centred in ``width`` columns, split like ``str.center`` does."""
    margin = max(width - columns(text), 0)
    left = margin // 2 + (margin & width & 1)
    return " " * left + text + " " * (margin - left)
