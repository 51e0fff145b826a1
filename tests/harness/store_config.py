"""A valid store configuration document for tests: a store that is not the demo store.

PINs are hashed with argon2id at the lowest cost so a test pays milliseconds, not seconds; the
register verifies whatever cost the hash names.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from argon2 import PasswordHasher

#: The PINs of the staff below, for tests that sign in.
PINS = {"C01": "2468", "C02": "1357", "M01": "9090"}


@cache
def pin_hash(pin: str) -> str:
    """An argon2id PHC string of ``pin`` (cheap cost, cached per PIN)."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(pin)


def store_config_doc(**sections: Any) -> dict[str, Any]:
    """A document for "Lindenhof Bakery" in Bern; ``sections`` replace top-level keys."""
    doc: dict[str, Any] = {
        "store": {
            "id": "store-bern-7",
            "name": "Lindenhof Bakery",
            "address": {
                "lines": ["Marktgasse 7"],
                "postcode": "3011",
                "city": "Bern",
                "country": "CH",
            },
            "tax_number": "CHE-987.654.321 MWST",
        },
        "receipt": {"header": ["Fresh every morning"], "footer": ["Merci & bis bald"]},
        "registers": {"1": "Front counter"},
        "currency": {"code": "CHF", "exponent": 2, "cash_increment_minor": 5},
        "tax": {
            "pricing": "inclusive",
            "rounding": "per_total",
            "classes": [
                {"code": "A", "rate": "0.081", "label": "Standard"},
                {"code": "B", "rate": "0.026", "label": "Reduced"},
                {"code": "Z", "rate": "0", "label": "Exempt"},
            ],
        },
        "hours": {
            "time_zone": "Europe/Zurich",
            "week": {d: [{"opens": "07:00", "closes": "18:30"}] for d in ("mon", "tue", "wed")},
        },
        "kiosk": {"language": "de", "idle_lock_seconds": 120},
        "quick_keys": {  # SKUs of the demo catalog, and one the catalog does not have
            "categories": [
                {
                    "name": "Bakery",
                    "colour": "#8a5a2b",
                    "keys": [
                        {"label": "Croissant", "colour": "#f2c14e", "sku": "SKU-00007"},
                        {"label": "Sourdough", "colour": "#8a5a2b", "sku": "SKU-00006"},
                        {"label": "Seasonal cake", "colour": "#d1495b", "sku": "SKU-99999"},
                    ],
                },
                {
                    "name": "Dairy",
                    "colour": "#2b6f8a",
                    "keys": [{"label": "Milk 1 l", "colour": "#3fa7d6", "sku": "SKU-00001"}],
                },
            ]
        },
        "staff": {
            "members": [
                {"id": "C01", "name": "Nora", "role": "cashier", "pin_hash": pin_hash("2468")},
                {"id": "C02", "name": "Jonas", "role": "cashier", "pin_hash": pin_hash("1357")},
                {"id": "M01", "name": "Elif", "role": "manager", "pin_hash": pin_hash("9090")},
            ],
            "lockout": {"max_attempts": 3, "lock_seconds": 600},
        },
    }
    doc.update(copy.deepcopy(sections))
    return doc
