"""The short code a field tech types when the QR code will not scan.

How it works: 11 random Crockford base32 symbols and one check symbol, shown as
`XXXX-XXXX-XXXX`. Crockford's alphabet has no I, L, O or U, and reading normalises the
look-alikes (I, L -> 1, O -> 0) and ignores case, spaces and dashes, so what a human can confuse
maps to the same code.

The check is Damm's algorithm over a quasigroup of order 32 (protocols/damm32.py says how it
works): it catches every single substitution and every swap of neighbours, including the 0↔Z swap
that Luhn mod 32 misses. Both facts are checked exhaustively in
tests/provisioning/test_fallback_code.py.

Codes already printed: the old check was Luhn mod 32. Appliances shipped with an older image
still check typed codes with Luhn before they call the control plane, so :func:`new_fallback_code`
draws only codes that pass *both* checks (one in 32 of the Damm-valid codes; 50 random bits
instead of 55). Reading accepts the Damm check only: a code issued before this change and still
unexpired (24 h at most) fails it 31 times in 32 and the operator issues a new one.

50 bits is far less than the QR token's 192, so the code is its own secret with its own hash,
single use and 24 h expiry like the token, and the control plane must rate-limit look-ups by code.
"""

from __future__ import annotations

import hashlib
import secrets

from protocols.damm32 import (
    ALPHABET,
    LOOK_ALIKES,
    VALUE,
    check_symbol,
    check_value,
    damm_state,
    damm_step,
)
from provisioning.errors import MalformedToken

# The check primitive moved to protocols (the customer card uses it too); these names stay
# importable from here for the enrolment code's readers.
__all__ = [
    "ALPHABET",
    "DATA_SYMBOLS",
    "GROUP",
    "LENGTH",
    "check_symbol",
    "damm_step",
    "format_code",
    "hash_fallback_code",
    "new_fallback_code",
    "normalise_fallback_code",
]

DATA_SYMBOLS = 11
LENGTH = DATA_SYMBOLS + 1
GROUP = 4
_HASH_DOMAIN = b"sf.enrolment.fallback-code\x00"


def _passes_legacy_luhn(values: list[int]) -> bool:
    """Luhn mod 32 over a whole code's symbol values, as older appliance images verify it."""
    total = 0
    for position, value in enumerate(reversed(values)):
        addend = value * (2 if position % 2 else 1)
        total += addend // len(ALPHABET) + addend % len(ALPHABET)
    return total % len(ALPHABET) == 0


def format_code(canonical: str) -> str:
    """Group a canonical 12-symbol code as `XXXX-XXXX-XXXX` for printing."""
    return "-".join(canonical[i : i + GROUP] for i in range(0, len(canonical), GROUP))


def new_fallback_code() -> str:
    """A fresh random code, formatted for printing; it passes the old Luhn check as well.

    Rejection sampling keeps the draw uniform over the codes that pass both checks (32 draws on
    average), so older appliance images accept what we issue today.
    """
    while True:
        bits = secrets.randbits(5 * DATA_SYMBOLS)
        values = [(bits >> (5 * i)) & 0b11111 for i in range(DATA_SYMBOLS)]
        values.append(check_value(values))
        if _passes_legacy_luhn(values):
            return format_code("".join(ALPHABET[value] for value in values))


def normalise_fallback_code(text: str) -> str:
    """The canonical 12 symbols of a typed code; raise MalformedToken with what is wrong."""
    canonical = text.upper().translate(LOOK_ALIKES)
    if len(canonical) != LENGTH:
        msg = f"the code has {len(canonical)} characters, expected {LENGTH}"
        raise MalformedToken(msg)
    unknown = sorted({symbol for symbol in canonical if symbol not in VALUE})
    if unknown:
        msg = f"the code contains characters that are never printed: {''.join(unknown)}"
        raise MalformedToken(msg)
    if damm_state(canonical) != 0:
        msg = "the check character does not match, so one character is mistyped"
        raise MalformedToken(msg)
    return canonical


def hash_fallback_code(text: str) -> str:
    """sha256 hex of the canonical code: the only form the control plane stores."""
    return hashlib.sha256(_HASH_DOMAIN + normalise_fallback_code(text).encode()).hexdigest()
