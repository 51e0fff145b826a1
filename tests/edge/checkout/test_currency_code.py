"""A store's currency is a code the cloud can store: 3 capital letters, refused at load otherwise.

The store document is where the register's currency is made; a code such as ``EURO`` would make
every sale refused by the ledger (its body is the contract's SaleBody), so it is refused here.
"""

from __future__ import annotations

import pytest

from edge.checkout.money import Currency


@pytest.mark.parametrize("code", ["EURO", "eur", "EU", "", "E1R", "EUR "])
def test_a_currency_code_the_cloud_cannot_store_is_refused(code: str) -> None:
    with pytest.raises(ValueError, match="is not 3 capital letters"):
        Currency(code, 2, 1)


@pytest.mark.parametrize("code", ["EUR", "CHF", "JPY", "KWD"])
def test_an_iso_4217_code_is_accepted(code: str) -> None:
    assert Currency(code, 2, 1).code == code
