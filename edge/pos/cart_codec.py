"""A cart in progress ↔ JSON, so a parked sale survives a restart of the appliance.

The policy is not stored: a resumed cart takes the store's current policy, like a cart that
was never parked. Prices stay as they were scanned — the customer was shown them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

from edge.checkout.cart import AmountOff, Cart, CartLine, CartPolicy, Discount, PercentOff
from edge.checkout.catalog import SoldBy


def _discount_to_json(discount: Discount | None) -> dict[str, str | int] | None:
    if discount is None:
        return None
    if isinstance(discount, PercentOff):
        return {"percent": str(discount.percent)}
    return {"amount_minor": discount.amount_minor}


def _discount_from_json(raw: dict[str, Any] | None) -> Discount | None:
    if raw is None:
        return None
    if "percent" in raw:
        return PercentOff(Decimal(str(raw["percent"])))
    return AmountOff(int(raw["amount_minor"]))


def cart_to_json(cart: Cart) -> str:
    """The cart without its policy, as JSON text."""
    lines = [
        {
            "line_id": line.line_id,
            "item_id": line.item_id,
            "name": line.name,
            "tax_class": line.tax_class,
            "department": line.department,
            "sold_by": line.sold_by.value,
            "quantity": str(line.quantity),
            "unit_price_minor": line.unit_price_minor,
            "catalog_price_minor": line.catalog_price_minor,
            "discount": _discount_to_json(line.discount),
            "approved_by": line.approved_by,
            "voided": line.voided,
        }
        for line in cart.lines
    ]
    return json.dumps(
        {
            "cart_id": cart.cart_id,
            "lines": lines,
            "basket_discount": _discount_to_json(cart.basket_discount),
            "basket_approved_by": cart.basket_approved_by,
            "next_line_id": cart.next_line_id,
        },
        separators=(",", ":"),
    )


def cart_from_json(text: str, *, policy: CartPolicy) -> Cart:
    """A cart parked by :func:`cart_to_json`, under today's ``policy``."""
    raw = json.loads(text)
    lines = tuple(
        CartLine(
            line_id=int(r["line_id"]),
            item_id=str(r["item_id"]),
            name=str(r["name"]),
            tax_class=str(r["tax_class"]),
            department=str(r["department"]),
            sold_by=SoldBy(r["sold_by"]),
            quantity=Decimal(r["quantity"]),
            unit_price_minor=int(r["unit_price_minor"]),
            catalog_price_minor=int(r["catalog_price_minor"]),
            discount=_discount_from_json(r["discount"]),
            approved_by=r["approved_by"],
            voided=bool(r["voided"]),
        )
        for r in raw["lines"]
    )
    cart = Cart(policy=policy, cart_id=str(raw["cart_id"]), lines=lines)
    return replace(
        cart,
        basket_discount=_discount_from_json(raw["basket_discount"]),
        basket_approved_by=raw["basket_approved_by"],
        next_line_id=int(raw["next_line_id"]),
    )
