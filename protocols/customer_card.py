"""The customer id and the loyalty card / QR payload that carries it: ``SFC1:<customer_id>``.

How it works: a customer id is ``C`` + 12 random Crockford base32 symbols (60 bits) + 1 Damm
check symbol (protocols/damm32.py), e.g. ``C5T0K8J2M9QXR7``. It is pseudonymous: random, with no
personal data in it, so the appliance can hold it, journal it with a sale and attach it offline.
The check symbol catches every single substituted symbol and every swap of neighbours, so a
mistyped or misread id is refused at the till instead of crediting a stranger.

A card or QR code carries ``SFC1:`` + the id. A scanner sends it as text like any barcode; the
register recognises :data:`CARD_PREFIX` in its scan path before item lookup
(:func:`is_customer_card`) and reads the id with :func:`parse_customer_card`. Every character is
in QR's alphanumeric set (upper case, digits, ``:``), so the QR code stays small.

Reading forgives what a human confuses when an id is typed (case, spaces, dashes, I/L -> 1,
O -> 0), and refuses anything else with a :class:`InvalidCustomerCard` whose ``reason`` says what
is wrong.
"""

from __future__ import annotations

import secrets

from protocols.damm32 import ALPHABET, LOOK_ALIKES, VALUE, check_value, damm_state
from protocols.errors import ProtocolError

#: What every card payload starts with: storefleet customer card, version 1.
CARD_PREFIX = "SFC1:"
#: What every customer id starts with.
ID_MARK = "C"
#: Random symbols in an id (60 bits), then one check symbol.
DATA_SYMBOLS = 12
#: Length of a customer id: the mark, the data symbols, the check symbol.
ID_LENGTH = len(ID_MARK) + DATA_SYMBOLS + 1


class InvalidCustomerCard(ProtocolError):  # noqa: N818 - named in the domain's words
    """Not a customer card or id; ``reason`` says what is wrong in words a cashier can act on."""


def new_customer_id() -> str:
    """A fresh random customer id with its check symbol."""
    bits = secrets.randbits(5 * DATA_SYMBOLS)
    values = [(bits >> (5 * i)) & 0b11111 for i in range(DATA_SYMBOLS)]
    values.append(check_value(values))
    return ID_MARK + "".join(ALPHABET[value] for value in values)


def normalise_customer_id(text: str) -> str:
    """The canonical id of a scanned or typed customer id; raise InvalidCustomerCard if none."""
    canonical = text.strip().upper().translate(LOOK_ALIKES)
    if not canonical.startswith(ID_MARK):
        msg = f"a customer id starts with {ID_MARK!r}"
        raise InvalidCustomerCard(msg)
    if len(canonical) != ID_LENGTH:
        msg = f"a customer id has {ID_LENGTH} characters, this one has {len(canonical)}"
        raise InvalidCustomerCard(msg)
    symbols = canonical[len(ID_MARK) :]
    unknown = sorted({symbol for symbol in symbols if symbol not in VALUE})
    if unknown:
        msg = f"the customer id contains characters that are never printed: {''.join(unknown)}"
        raise InvalidCustomerCard(msg)
    if damm_state(symbols) != 0:
        msg = "the customer id's check character does not match: scan the card again or retype it"
        raise InvalidCustomerCard(msg)
    return canonical


def is_customer_card(text: str) -> bool:
    """True when scanned text is meant as a customer card (it may still be a damaged one)."""
    return text.strip().upper().startswith(CARD_PREFIX)


def parse_customer_card(text: str) -> str:
    """The customer id on a card or QR payload ``SFC1:<id>``; raise InvalidCustomerCard if none."""
    stripped = text.strip()
    if not stripped.upper().startswith(CARD_PREFIX):
        msg = f"not a customer card: it does not start with {CARD_PREFIX!r}"
        raise InvalidCustomerCard(msg)
    return normalise_customer_id(stripped[len(CARD_PREFIX) :])


def format_customer_card(customer_id: str) -> str:
    """The card / QR payload for a customer id (checked: a bad id is never printed)."""
    return CARD_PREFIX + normalise_customer_id(customer_id)
