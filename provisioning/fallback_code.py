"""The short code a field tech types when the QR code will not scan.

How it works: 11 random Crockford base32 symbols and one check symbol, shown as
`XXXX-XXXX-XXXX`. Crockford's alphabet has no I, L, O or U, and reading normalises the
look-alikes (I, L -> 1, O -> 0) and ignores case, spaces and dashes, so what a human can confuse
maps to the same code.

The check is Damm's algorithm over a totally anti-symmetric quasigroup of order 32 (H. M. Damm,
"Total anti-symmetrische Quasigruppen", 2004), built from GF(2^5) arithmetic::

    x * y = A·x + y        in GF(32) = GF(2)[t] / (t^5 + t^2 + 1), with A = t (symbol 2)

Reading runs ``state = state * symbol`` over all 12 symbols from ``state = 0``; a code is valid
when the final state is 0, and the check symbol is the one that brings the state to 0. Because
every row and every column of the table is a permutation (A ≠ 0), changing any one symbol
changes the final state: every single substitution is caught. Because ``(c*x)*y = A²c + A·x + y``
equals ``(c*y)*x`` only if ``(A+1)(x+y) = 0``, i.e. ``x = y`` (A ≠ 1), swapping any two
neighbours is caught too — including the 0↔Z swap that Luhn mod 32 misses. Both facts are
checked exhaustively in tests/provisioning/test_fallback_code.py.

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

from provisioning.errors import MalformedToken

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DATA_SYMBOLS = 11
LENGTH = DATA_SYMBOLS + 1
GROUP = 4
_VALUE = {symbol: index for index, symbol in enumerate(ALPHABET)}
_LOOK_ALIKES = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})
_HASH_DOMAIN = b"sf.enrolment.fallback-code\x00"

# GF(32) with the primitive polynomial t^5 + t^2 + 1; multiplying by A = t is a shift and a
# conditional reduction. _TIMES_A[x] is A·x for each of the 32 field elements.
_FIELD_POLYNOMIAL = 0b100101
_TIMES_A: tuple[int, ...] = tuple(
    ((x << 1) ^ _FIELD_POLYNOMIAL) if x & 0b10000 else x << 1 for x in range(32)
)


def damm_step(state: int, symbol: int) -> int:
    """The quasigroup operation ``state * symbol = A·state + symbol`` (addition is XOR)."""
    return _TIMES_A[state] ^ symbol


def _damm_state(symbols: str) -> int:
    state = 0
    for symbol in symbols:
        state = damm_step(state, _VALUE[symbol])
    return state


def check_symbol(data: str) -> str:
    """The Damm check symbol for canonical data symbols: the one that brings the state to 0."""
    # state * c = A·state + c = 0  <=>  c = A·state (in characteristic 2, minus is plus)
    return ALPHABET[_TIMES_A[_damm_state(data)]]


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
        state = 0
        for value in values:
            state = damm_step(state, value)
        values.append(_TIMES_A[state])  # the check symbol, as in check_symbol()
        if _passes_legacy_luhn(values):
            return format_code("".join(ALPHABET[value] for value in values))


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
    if _damm_state(canonical) != 0:
        msg = "the check character does not match, so one character is mistyped"
        raise MalformedToken(msg)
    return canonical


def hash_fallback_code(text: str) -> str:
    """sha256 hex of the canonical code: the only form the control plane stores."""
    return hashlib.sha256(_HASH_DOMAIN + normalise_fallback_code(text).encode()).hexdigest()
