"""The short code a field tech types when the QR code will not scan.

How it works: 11 random Crockford base32 symbols (55 bits) and one Luhn mod 32 check symbol,
shown as `XXXX-XXXX-XXXX`. Crockford's alphabet has no I, L, O or U, and reading normalises
the look-alikes (I, L -> 1, O -> 0) and ignores case, spaces and dashes, so what a human can
confuse maps to the same code. The check symbol catches every single mistyped symbol and most
swaps of neighbours before the appliance even calls the control plane.

55 bits is far less than the QR token's 192, so the code is its own secret with its own hash,
single use and 24 h expiry like the token, and the control plane must rate-limit look-ups by code.
"""

from __future__ import annotations

import hashlib
import secrets

from provisioning.errors import MalformedToken

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DATA_SYMBOLS = 11
LENGTH = DATA_SYMBOLS + 1
GROUP = 4
_VALUE = {symbol: index for index, symbol in enumerate(ALPHABET)}
_LOOK_ALIKES = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})
_HASH_DOMAIN = b"sf.enrolment.fallback-code\x00"


def _luhn_sum(symbols: str, *, double_first: bool) -> int:
    """Luhn mod N sum from the right; the doubling map is a permutation of 0..31."""
    total = 0
    double = double_first
    for symbol in reversed(symbols):
        addend = _VALUE[symbol] * (2 if double else 1)
        total += addend // len(ALPHABET) + addend % len(ALPHABET)
        double = not double
    return total


def check_symbol(data: str) -> str:
    """The Luhn mod 32 check symbol for canonical data symbols."""
    return ALPHABET[(-_luhn_sum(data, double_first=True)) % len(ALPHABET)]


def format_code(canonical: str) -> str:
    """Group a canonical 12-symbol code as `XXXX-XXXX-XXXX` for printing."""
    return "-".join(canonical[i : i + GROUP] for i in range(0, len(canonical), GROUP))


def new_fallback_code() -> str:
    """A fresh random code, formatted for printing."""
    data = "".join(secrets.choice(ALPHABET) for _ in range(DATA_SYMBOLS))
    return format_code(data + check_symbol(data))


def normalise_fallback_code(text: str) -> str:
    """The canonical 12 symbols of a typed code; raise MalformedToken with what is wrong."""
    canonical = text.upper().translate(_LOOK_ALIKES)
    if len(canonical) != LENGTH:
        msg = f"the code has {len(canonical)} characters, expected {LENGTH}"
        raise MalformedToken(msg)
    unknown = sorted({symbol for symbol in canonical if symbol not in _VALUE})
    if unknown:
        msg = f"the code contains characters that are never printed: {''.join(unknown)}"
        raise MalformedToken(msg)
    if _luhn_sum(canonical, double_first=False) % len(ALPHABET) != 0:
        msg = "the check character does not match, so one character is mistyped"
        raise MalformedToken(msg)
    return canonical


def hash_fallback_code(text: str) -> str:
    """sha256 hex of the canonical code: the only form the control plane stores."""
    return hashlib.sha256(_HASH_DOMAIN + normalise_fallback_code(text).encode()).hexdigest()
