"""Crockford base32 symbols and Damm's check over a quasigroup of order 32: catches typos.

How it works: a code is a string of Crockford base32 symbols (no I, L, O or U) ending in one
check symbol. The check is Damm's algorithm over a totally anti-symmetric quasigroup of order 32
(H. M. Damm, "Total anti-symmetrische Quasigruppen", 2004), built from GF(2^5) arithmetic::

    x * y = A·x + y        in GF(32) = GF(2)[t] / (t^5 + t^2 + 1), with A = t (symbol 2)

Reading runs ``state = state * symbol`` over every symbol from ``state = 0``; a code is valid
when the final state is 0, and the check symbol is the one that brings the state to 0. Because
every row and every column of the table is a permutation (A ≠ 0), changing any one symbol
changes the final state: every single substitution is caught. Because ``(c*x)*y = A²c + A·x + y``
equals ``(c*y)*x`` only if ``(A+1)(x+y) = 0``, i.e. ``x = y`` (A ≠ 1), swapping any two
neighbours is caught too — including the 0↔Z swap that Luhn mod 32 misses.

Two codes use it: the enrolment fallback code a field tech types (provisioning/fallback_code.py)
and the customer id on a loyalty card (protocols/customer_card.py). It lives here because
``protocols`` is what both the appliance and the cloud import, and it must not import provisioning.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Symbol -> its value 0..31.
VALUE: dict[str, int] = {symbol: index for index, symbol in enumerate(ALPHABET)}
#: What a human can confuse, mapped to what it means; separators dropped.
LOOK_ALIKES = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})

# GF(32) with the primitive polynomial t^5 + t^2 + 1; multiplying by A = t is a shift and a
# conditional reduction. TIMES_A[x] is A·x for each of the 32 field elements.
_FIELD_POLYNOMIAL = 0b100101
TIMES_A: tuple[int, ...] = tuple(
    ((x << 1) ^ _FIELD_POLYNOMIAL) if x & 0b10000 else x << 1 for x in range(32)
)


def damm_step(state: int, symbol: int) -> int:
    """The quasigroup operation ``state * symbol = A·state + symbol`` (addition is XOR)."""
    return TIMES_A[state] ^ symbol


def damm_state(symbols: str) -> int:
    """The state after reading canonical symbols from 0; 0 means a valid code."""
    state = 0
    for symbol in symbols:
        state = damm_step(state, VALUE[symbol])
    return state


def check_value(values: list[int]) -> int:
    """The check symbol's value for data symbol values: the one that brings the state to 0."""
    state = 0
    for value in values:
        state = damm_step(state, value)
    # state * c = A·state + c = 0  <=>  c = A·state (in characteristic 2, minus is plus)
    return TIMES_A[state]


def check_symbol(data: str) -> str:
    """The Damm check symbol for canonical data symbols."""
    return ALPHABET[TIMES_A[damm_state(data)]]
