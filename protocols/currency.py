"""How many digits a currency's minor unit has (ISO 4217), read by both sides.

Why here: the contract carries money as integer minor units plus a currency code, so whoever
shows an amount must know the code's exponent. A cloud that assumed 2 showed 1,290 yen as
"12.90" and 1.290 Kuwaiti dinars as "12.90". The table lists the codes of ISO 4217's list one
(amendment 179, 2024) whose minor unit is not 2; every other code has 2. A store's configuration
may still say its own exponent (``protocols.store_config.CurrencySection``); this table is what a
reader knows from the code alone.
"""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import Final

_ZERO_DIGITS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE_DIGITS = "BHD IQD JOD KWD LYD OMR TND"
_FOUR_DIGITS = "CLF UYW"

#: ISO 4217 codes whose minor unit is not two digits.
MINOR_UNIT_DIGITS: Final = MappingProxyType(
    {
        **dict.fromkeys(_ZERO_DIGITS.split(), 0),
        **dict.fromkeys(_THREE_DIGITS.split(), 3),
        **dict.fromkeys(_FOUR_DIGITS.split(), 4),
    }
)


def minor_unit_digits(code: str) -> int:
    """The digits after the decimal point of ``code`` (2 for a code the table does not list)."""
    return MINOR_UNIT_DIGITS.get(code, 2)


def format_minor(minor: int, code: str) -> str:
    """Minor units as a plain decimal string with the currency's digits, never through float.

    ``format_minor(1290, "JPY") == "1290"``, ``format_minor(1290, "KWD") == "1.290"``.
    """
    digits = minor_unit_digits(code)
    return str(Decimal(minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits)))
