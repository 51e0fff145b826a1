"""What a printer can print: its code pages, its double-byte mode, and the rest replaced.

How it works: :class:`PrinterProfile` is built from :class:`PaperSettings` and the python-escpos
capability profile (``escpos.capabilities``): the single-byte code pages the model has (``ESC t
n``; pages python-escpos has no table for are left out) and, when ``cjk`` is set, the encoding
of its Kanji / GB18030 mode (``FS &`` … ``FS .``). :meth:`PrinterProfile.printable` maps any
text to text the printer can print, character by character, keeping every character's printed
width (:mod:`edge.checkout.text_columns`), so a line laid out in columns fits on paper:

1. printable ASCII, a character in one of the code pages, or a Wide/Fullwidth character the
   double-byte mode encodes in two bytes: kept;
2. a combining mark or format character (zero columns) that is still left: dropped;
3. a character whose compatibility decomposition (Unicode NFKD, accents removed) is printable
   and no wider: that transliteration, padded with spaces to the same width (``ő`` → ``o``,
   ``Ａ`` → ``A``);
4. anything else: one ``?`` per printed column (an emoji or an ideograph without a double-byte
   mode is ``??``).

Text first goes through ``clean`` (NFC; control characters become ``?``), so nothing in an item
name reaches the printer as a command. :mod:`.text_encoder` turns printable text into bytes.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from escpos.capabilities import get_profile
from escpos.magicencode import Encoder

from edge.checkout.text_columns import char_columns, clean, columns
from edge.peripherals.printer.settings import CjkMode, PaperSettings

_NOT_PRINTED = frozenset(("Cc", "Cf", "Cn", "Co", "Cs", "Mn", "Me", "Zl", "Zp"))


@functools.cache
def code_page_table(name: str) -> tuple[str | None, ...] | None:
    """The characters of bytes 0x80-0xFF in code page ``name`` (None: not printable there).

    The tables are python-escpos' own (what its profiles promise); undefined bytes, controls
    and characters that do not take exactly one column are None. None for an unknown page.
    """
    try:
        chars = Encoder._get_codepage_char_list(name)  # the library's table, read-only
    except LookupError:
        return None
    table = tuple(
        None
        if ch == " " or unicodedata.category(ch) in _NOT_PRINTED or char_columns(ch) != 1
        else ch
        for ch in chars
    )
    return table if any(table) else None


@dataclass(frozen=True, slots=True)
class _Charset:
    pages: Mapping[int, tuple[str | None, ...]]  # ESC t n → table of 0x80-0xFF
    where: Mapping[str, tuple[tuple[int, int], ...]]  # character → (page, byte), lowest first


@functools.cache
def _charset(profile: str) -> _Charset:
    pages: dict[int, tuple[str | None, ...]] = {}
    for name, number in get_profile(profile).get_code_pages().items():  # {name: "n"}
        table = code_page_table(name)
        if table is not None:
            pages[int(number)] = table
    where: dict[str, list[tuple[int, int]]] = {}
    for number in sorted(pages):
        for offset, ch in enumerate(pages[number]):
            if ch is not None:
                where.setdefault(ch, []).append((number, 0x80 + offset))
    return _Charset(pages, {ch: tuple(found) for ch, found in where.items()})


def cjk_bytes(ch: str, cjk: CjkMode) -> bytes | None:
    """The two bytes of a Wide/Fullwidth ``ch`` in the double-byte mode, or None."""
    if char_columns(ch) != 2:
        return None
    try:
        encoded = ch.encode(cjk)
    except UnicodeEncodeError:
        return None
    return encoded if len(encoded) == 2 and encoded[0] >= 0x81 else None


@dataclass(frozen=True, slots=True)
class PrinterProfile:
    """One printer's character repertoire and paper, as the layout needs them."""

    name: str
    dots: int
    columns: int
    cjk: CjkMode | None

    @classmethod
    def for_paper(cls, paper: PaperSettings) -> PrinterProfile:
        """The profile of the configured printer and paper."""
        return cls(paper.profile, paper.dots, paper.columns, paper.cjk)

    @property
    def code_pages(self) -> Mapping[int, tuple[str | None, ...]]:
        """ESC t n → the printable characters of bytes 0x80-0xFF in that page."""
        return _charset(self.name).pages

    def places(self, ch: str) -> tuple[tuple[int, int], ...]:
        """Every (code page, byte) that prints ``ch``, lowest page first."""
        return _charset(self.name).where.get(ch, ())

    def can_print(self, ch: str) -> bool:
        """``ch`` prints as it is (ASCII, a code page, or the double-byte mode)."""
        return (
            " " <= ch <= "~"
            or ch in _charset(self.name).where
            or (self.cjk is not None and cjk_bytes(ch, self.cjk) is not None)
        )

    def printable(self, text: str) -> str:
        """``text`` as this printer prints it, every character keeping its printed width."""
        text = clean(text)
        if text.isascii():
            return text
        return "".join(_printable_char(self, ch) for ch in text)


@functools.lru_cache(maxsize=65536)
def _printable_char(profile: PrinterProfile, ch: str) -> str:
    if profile.can_print(ch):
        return ch
    width = char_columns(ch)
    if width == 0:
        return ""
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", ch) if unicodedata.category(c) not in _NOT_PRINTED
    )
    if plain and all(profile.can_print(c) for c in plain) and columns(plain) <= width:
        return plain + " " * (width - columns(plain))
    return "?" * width
