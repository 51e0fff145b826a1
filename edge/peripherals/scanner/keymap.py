"""Keyboard layouts: which character a key code types, with and without Shift.

A keyboard-wedge scanner "types" the barcode as key presses of the layout it was configured
for, so decoding needs the same layout. Key names are evdev's (``linux/input-event-codes.h``).
"""

from __future__ import annotations

from evdev import ecodes

Layout = dict[int, tuple[str, str]]  # key code -> (plain, shifted)


def _keys(pairs: dict[str, tuple[str, str]]) -> Layout:
    return {ecodes.ecodes[name]: chars for name, chars in pairs.items()}


_LETTERS = {f"KEY_{c.upper()}": (c, c.upper()) for c in "abcdefghijklmnopqrstuvwxyz"}
_KEYPAD = {
    **{f"KEY_KP{d}": (str(d), str(d)) for d in range(10)},  # NumLock on, as scanners send it
    "KEY_KPMINUS": ("-", "-"),
    "KEY_KPPLUS": ("+", "+"),
    "KEY_KPASTERISK": ("*", "*"),
    "KEY_KPSLASH": ("/", "/"),
    "KEY_KPDOT": (".", "."),
    "KEY_SPACE": (" ", " "),
}

US: Layout = _keys(
    {
        **_LETTERS,
        **_KEYPAD,
        **{f"KEY_{d}": (str(d), s) for d, s in zip(range(10), ")!@#$%^&*(", strict=True)},
        "KEY_MINUS": ("-", "_"),
        "KEY_EQUAL": ("=", "+"),
        "KEY_LEFTBRACE": ("[", "{"),
        "KEY_RIGHTBRACE": ("]", "}"),
        "KEY_BACKSLASH": ("\\", "|"),
        "KEY_SEMICOLON": (";", ":"),
        "KEY_APOSTROPHE": ("'", '"'),
        "KEY_GRAVE": ("`", "~"),
        "KEY_COMMA": (",", "<"),
        "KEY_DOT": (".", ">"),
        "KEY_SLASH": ("/", "?"),
    }
)

DE: Layout = _keys(
    {
        **_LETTERS,
        **_KEYPAD,
        "KEY_Y": ("z", "Z"),  # QWERTZ: Y and Z swap places
        "KEY_Z": ("y", "Y"),
        **{f"KEY_{d}": (str(d), s) for d, s in zip(range(10), '=!"§$%&/()', strict=True)},
        "KEY_MINUS": ("ß", "?"),
        "KEY_EQUAL": ("´", "`"),
        "KEY_LEFTBRACE": ("ü", "Ü"),
        "KEY_RIGHTBRACE": ("+", "*"),
        "KEY_BACKSLASH": ("#", "'"),
        "KEY_SEMICOLON": ("ö", "Ö"),
        "KEY_APOSTROPHE": ("ä", "Ä"),
        "KEY_GRAVE": ("^", "°"),
        "KEY_102ND": ("<", ">"),
        "KEY_COMMA": (",", ";"),
        "KEY_DOT": (".", ":"),
        "KEY_SLASH": ("-", "_"),
    }
)

LAYOUTS: dict[str, Layout] = {"us": US, "de": DE}
