"""The register's state as the kiosk draws it: JSON-safe, money as minor units and as text.

One function builds the whole view; the kiosk pushes it over its WebSocket after every change,
so the screen is a pure function of this document and a reconnecting browser is never out of
date. Nothing here decides anything: it reads the register and formats.
"""

from __future__ import annotations

from typing import Any

from edge.checkout.catalog import Item, SoldBy
from edge.checkout.errors import UnknownItem
from edge.checkout.money import Currency, format_minor
from edge.pos.payments import cash_taken
from edge.pos.register import Register
from edge.pos.returns_desk import ReturnableSale


def money(minor: int, currency: Currency) -> dict[str, Any]:
    """An amount for the screen."""
    return {"minor": minor, "text": format_minor(minor, currency)}


def register_view(register: Register) -> dict[str, Any]:
    """Everything the kiosk shows."""
    cur = register.config.currency
    cart, shift, payment = register.cart, register.shift, register.payment
    totals = cart.totals()
    by_line = {t.line_id: t for t in totals.lines}
    lines = []
    for line in cart.lines:
        t = by_line.get(line.line_id)
        lines.append(
            {
                "line_id": line.line_id,
                "item_id": line.item_id,
                "name": line.name,
                "quantity": f"{line.quantity:f}",
                "weighed": line.sold_by is SoldBy.WEIGHT,
                "unit_price": money(line.unit_price_minor, cur),
                "overridden": line.overridden,
                "discount": None if t is None else money(t.line_discount_minor, cur),
                "total": None if t is None else money(t.total_minor, cur),
                "voided": line.voided,
            }
        )
    view: dict[str, Any] = {
        "register_id": register.register_id,
        "store": register.config.store_name,
        "currency": cur.code,
        "cashier": None
        if register.cashier is None
        else {"id": register.cashier.id, "name": register.cashier.name},
        "employees": [
            {"id": e.id, "name": e.name, "role": e.role.name.lower()}
            for e in register.config.employees
        ],
        "shift": None
        if shift is None
        else {
            "id": shift.opened.shift_id,
            "float": money(shift.opened.float_minor, cur),
            "expected_cash": money(shift.expected_cash_minor, cur),
            "sales": shift.sales_count,
        },
        "cart": {
            "id": cart.cart_id,
            "lines": lines,
            "count": len(cart.open_lines),
            "subtotal": money(totals.subtotal_minor, cur),
            "discount": money(totals.discount_minor, cur),
            "tax": money(totals.tax_minor, cur),
            "total": money(totals.total_minor, cur),
            "basket_discount": cart.basket_discount is not None,
        },
        "payment": None
        if payment is None
        else {
            "due": money(payment.due_minor, cur),
            "paid": money(payment.paid_minor, cur),
            "remaining": money(payment.remaining_minor, cur),
            "cash_due": money(payment.cash_due_minor, cur),
            "cash_taken": money(cash_taken(payment), cur),
            "rounding": money(payment.rounding_minor, cur),
            "tenders": [
                {"kind": t.kind.value, "amount": money(t.amount_minor, cur), "last4": t.last4}
                for t in payment.tenders
            ],
        },
        "parked": [
            {"id": p.cart_id, "label": p.label, "at": p.parked_at.strftime("%H:%M")}
            for p in register.parked
        ],
        "receipt": None
        if register.last_receipt is None
        else {
            "kind": register.last_receipt.kind,
            "id": register.last_receipt.receipt_id,
            "text": register.last_receipt.text,
            "change": money(register.last_receipt.change_minor, cur),
        },
        "alert": None
        if register.alert is None
        else {
            "id": register.alert.id,
            "code": register.alert.code,
            "message": register.alert.message,
            "detail": register.alert.detail,
        },
        "busy": register.busy,
        "catalog_version": register.catalog.version,
        "quick_keys": quick_keys_view(register),
        "customer": customer_view(register),
    }
    return view


def customer_view(register: Register) -> dict[str, Any] | None:
    """The attached customer: pseudonymous id, tier, balance and what may be redeemed now."""
    known = register.loyalty.attached
    if known is None:
        return None
    cur = register.config.currency
    return {
        "id": known.customer_id,
        "tier": known.tier(register.config.loyalty),
        "points": known.points,
        "redeemable_points": known.redeemable_points(),
        "store_credit": money(known.store_credit_minor, cur),
        "redeemable_credit": money(known.redeemable_credit_minor(), cur),
        "offline": not known.fresh,
    }


#: The last quick-key grid resolved against the catalog, by (store rules, catalog version): the
#: view is built after every change, the grid only changes with the configuration or the catalog.
_quick_cache: list[tuple[object, int, list[dict[str, Any]]]] = []


def quick_keys_view(register: Register) -> list[dict[str, Any]]:
    """The touch grid: each key with the item its SKU names now (None: not in the catalog)."""
    grid, version = register.config.quick_keys, register.catalog.version
    for cached_grid, cached_version, cached in _quick_cache:
        if cached_grid is grid and cached_version == version:
            return cached
    cur = register.config.currency
    tabs = []
    for tab in register.config.quick_keys:
        keys = []
        for quick in tab.keys:
            item = _item_for(register, quick.sku)
            keys.append(
                {
                    "label": quick.label,
                    "colour": quick.colour,
                    "sku": quick.sku,
                    "item_id": None if item is None else item.id,
                    "price": None if item is None else money(item.price_minor, cur),
                }
            )
        tabs.append({"name": tab.name, "colour": tab.colour, "keys": keys})
    _quick_cache[:] = [(grid, version, tabs)]
    return tabs


def _item_for(register: Register, sku: str) -> Item | None:
    """The active item with this SKU (or, failing that, this item id)."""
    # every catalog the register runs with indexes SKUs; not every view type declares it
    by_sku = getattr(register.catalog, "by_sku", None)
    for find in (by_sku, register.catalog.by_id):
        if find is None:
            continue
        try:
            found: Item = find(sku)
        except UnknownItem:
            continue
        return found
    return None


def item_view(item: Item, currency: Currency) -> dict[str, Any]:
    """An item in search results and on quick keys."""
    return {
        "id": item.id,
        "name": item.name,
        "price": money(item.price_minor, currency),
        "weighed": item.sold_by is SoldBy.WEIGHT,
        "plu": item.plu,
    }


def returnable_view(sale: ReturnableSale, currency: Currency) -> dict[str, Any]:
    """The original sale on the return screen."""
    return {
        "receipt_no": sale.receipt_no,
        "receipt_id": sale.receipt_id,
        "completed_at": sale.completed_at,
        "total": money(sale.total_minor, currency),
        "lines": [
            {
                "line_id": line.line_id,
                "name": line.name,
                "sold": f"{line.sold:f}",
                "returned": f"{line.returned:f}",
                "left": f"{line.left:f}",
                "total": money(line.total_minor, currency),
            }
            for line in sale.lines
        ],
    }
