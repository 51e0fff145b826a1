"""A scan, as the pos app receives it from any scanner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

GS = "\x1d"  # GS1 group separator (FNC1 inside a GS1-128 / DataMatrix element string)


@dataclass(frozen=True, slots=True)
class Scan:
    """The decoded barcode text and the scanner it came from."""

    text: str
    scanner: str
    symbology: str = ""  # AIM identifier (e.g. "]C1" GS1-128, "]Q1" QR) when the scanner sends one

    @property
    def gs1_element_strings(self) -> list[str]:
        """The GS1 element strings split at group separators (empty for non-GS1 data)."""
        return self.text.split(GS) if GS in self.text else []


OnScan = Callable[[Scan], None]


def strip_affixes(text: str, *, prefix: str, suffix: str, aim: bool) -> tuple[str, str]:
    """Remove the configured prefix/suffix and, when ``aim``, the AIM symbology identifier."""
    if prefix and text.startswith(prefix):
        text = text[len(prefix) :]
    if suffix and text.endswith(suffix):
        text = text[: -len(suffix)]
    symbology = ""
    if aim and len(text) >= 3 and text[0] == "]" and text[1].isalpha():
        symbology, text = text[:3], text[3:]
    return text, symbology
