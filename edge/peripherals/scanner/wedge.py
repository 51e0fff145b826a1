"""Decode a keyboard-wedge scanner's key events into scans.

How it works: the scanner "types" each barcode as EV_KEY events followed by a terminator key
(Enter). :class:`WedgeDecoder` consumes ``evdev.InputEvent`` objects and keeps a tiny state:

* Shift held (either side) selects the shifted character of the layout;
* Alt held + keypad digits is a Windows-style *Alt code*: on Alt release the digits become one
  character (``Alt+0,2,9`` -> chr(29), the GS1 group separator);
* the configured group-separator key (e.g. F8) types chr(29) directly;
* a terminator key ends the scan: prefix, suffix and AIM identifier are stripped and it is
  returned.

Only key presses type (value 1); auto-repeat (2) is ignored, releases (0) only end modifiers.
EV_MSC scan codes and EV_SYN reports are skipped. Unknown keys are counted, not fatal.
"""

from __future__ import annotations

from evdev import InputEvent, ecodes

from edge.peripherals.scanner.keymap import LAYOUTS
from edge.peripherals.scanner.scan import GS, Scan, strip_affixes
from edge.peripherals.scanner.settings import WedgeSettings

_SHIFT = {ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT}
_ALT = {ecodes.KEY_LEFTALT, ecodes.KEY_RIGHTALT}
_KEYPAD_DIGITS = {ecodes.ecodes[f"KEY_KP{d}"]: str(d) for d in range(10)}
_IGNORED = {ecodes.KEY_LEFTCTRL, ecodes.KEY_RIGHTCTRL, ecodes.KEY_NUMLOCK, ecodes.KEY_CAPSLOCK}
MAX_SCAN = 4096  # a runaway device (stuck key) must not grow memory forever


class WedgeDecoder:
    """Feed events with :meth:`feed`; it returns a :class:`Scan` when one is complete."""

    def __init__(self, *, scanner: str, settings: WedgeSettings) -> None:
        self.scanner = scanner
        self.settings = settings
        self.layout = LAYOUTS[settings.layout]
        self.terminators = {ecodes.ecodes[k] for k in settings.terminators}
        gs_key = settings.group_separator_key
        self.gs_key = ecodes.ecodes[gs_key] if gs_key else None
        self.unknown_keys = 0
        self._chars: list[str] = []
        self._shift: set[int] = set()
        self._alt: set[int] = set()
        self._alt_digits: list[str] = []

    def feed(self, event: InputEvent) -> Scan | None:
        """Take one event."""
        if event.type != ecodes.EV_KEY:
            return None
        code, value = event.code, event.value
        if code in _SHIFT:
            (self._shift.add if value else self._shift.discard)(code)
            return None
        if code in _ALT:
            if value:
                self._alt.add(code)
            else:
                self._alt.discard(code)
                self._end_alt_code()
            return None
        if value != 1 or code in _IGNORED:
            return None
        if self._alt and code in _KEYPAD_DIGITS:
            self._alt_digits.append(_KEYPAD_DIGITS[code])
            return None
        if code in self.terminators:
            return self._finish()
        if code == self.gs_key:
            self._type(GS)
        elif code in self.layout:
            plain, shifted = self.layout[code]
            self._type(shifted if self._shift else plain)
        else:
            self.unknown_keys += 1
        return None

    def _type(self, char: str) -> None:
        if len(self._chars) < MAX_SCAN:
            self._chars.append(char)

    def _end_alt_code(self) -> None:
        if not self._alt and self._alt_digits:
            value = int("".join(self._alt_digits))
            self._alt_digits.clear()
            if 0 < value < 256:
                self._type(chr(value))

    def _finish(self) -> Scan | None:
        raw = "".join(self._chars)
        self._chars.clear()
        if not raw:
            return None
        s = self.settings
        text, symbology = strip_affixes(raw, prefix=s.prefix, suffix=s.suffix, aim=s.aim_ids)
        return Scan(text=text, scanner=self.scanner, symbology=symbology)
