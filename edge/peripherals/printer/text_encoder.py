"""Printable text to ESC/POS bytes for one print job, with code-page and Kanji-mode commands.

How it works: a :class:`TextEncoder` lives as long as one job and remembers what the printer is
set to: the code page (``ESC t n``; unknown after ``ESC @`` until we choose one) and whether the
double-byte mode is on. For each character of :meth:`PrinterProfile.printable` text it sends
ASCII as is, a code-page character from the page already selected when that page has it (else
from the lowest page that does, with ``ESC t n`` first), and a double-byte character inside
``FS &`` … ``FS .`` (Kanji / Chinese character mode; for Shift JIS the job also sends
``FS C 1`` once to select that code system). The double-byte mode is closed at the end of every
call, so no later command or single-byte text is read as half of a two-byte character.

Why not python-escpos' ``text()``: its encoder sends any text containing a CJK ideograph as raw
GB18030 without a mode command (garbage on paper) and passes control characters through.
"""

from __future__ import annotations

from edge.peripherals.printer.profile import PrinterProfile, cjk_bytes

SELECT_CODE_PAGE = b"\x1bt"  # ESC t n
KANJI_ON = b"\x1c&"  # FS &
KANJI_OFF = b"\x1c."  # FS .
SHIFT_JIS_SYSTEM = b"\x1cC\x01"  # FS C 1: Kanji code system Shift JIS


class TextEncoder:
    """Encodes text for one job; call :meth:`reset` after sending ``ESC @``."""

    def __init__(self, profile: PrinterProfile) -> None:
        self.profile = profile
        self.code_page: int | None = None
        self._kanji_system_sent = False

    def reset(self) -> None:
        """The printer was initialised: its code page is the default again (not known here)."""
        self.code_page = None
        self._kanji_system_sent = False

    def encode(self, text: str) -> bytes:
        """The bytes that print ``text`` (made printable first; no line feed added)."""
        printable = self.profile.printable(text)
        if printable.isascii():
            return printable.encode("ascii")
        out = bytearray()
        kanji = False
        for ch in printable:
            code = ord(ch)
            if code < 0x80:
                if kanji:
                    out += KANJI_OFF
                    kanji = False
                out.append(code)
                continue
            places = self.profile.places(ch)
            if places:
                if kanji:
                    out += KANJI_OFF
                    kanji = False
                byte = next((b for page, b in places if page == self.code_page), None)
                if byte is None:
                    self.code_page, byte = places[0]
                    out += SELECT_CODE_PAGE + bytes((self.code_page,))
                out.append(byte)
                continue
            cjk = self.profile.cjk
            pair = None if cjk is None else cjk_bytes(ch, cjk)
            if cjk is None or pair is None:  # printable() never leaves such a character
                raise ValueError(f"{ch!r} is not printable on {self.profile.name}")
            if not kanji:
                if cjk == "shift_jis" and not self._kanji_system_sent:
                    out += SHIFT_JIS_SYSTEM
                    self._kanji_system_sent = True
                out += KANJI_ON
                kanji = True
            out += pair
        if kanji:
            out += KANJI_OFF
        return bytes(out)
