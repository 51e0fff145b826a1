"""The cart of a sale in progress: lines, quantities, overrides, discounts, totals.

How it works: a ``Cart`` is an immutable value; every operation returns a new cart (so the kiosk
can keep the previous one for undo and the tests can replay anything). Operations that need a
manager return ``ApprovalRequired`` instead of a cart when the ``approval`` passed is missing or
too weak; the kiosk asks for a PIN (``staff.approve``) and calls again. Input the sale cannot
accept (zero quantity, 120 % off) raises a ``CartError``.

``totals()`` is the single place money is computed: each line's extended amount is unit price ×
quantity (weight lines rounded by the policy's rule), minus its line discount, minus its share of
the basket discount (allocated by largest remainder, exact to the minor unit), then taxed by
``tax.compute_tax``. Every figure is an ``int`` of minor units and the parts add up exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TypeAlias

from edge.checkout.barcodes import EmbeddedPrice, EmbeddedWeight, ParsedBarcode
from edge.checkout.catalog import Item, SoldBy
from edge.checkout.errors import InvalidDiscount, InvalidQuantity, UnknownLine, UnknownTaxClass
from edge.checkout.money import Currency, RoundingRule, allocate, multiply
from edge.checkout.staff import Approval, ApprovalRequired, Role, can_approve
from edge.checkout.tax import PricingMode, TaxableLine, TaxPolicy, TaxResult, compute_tax


@dataclass(frozen=True, slots=True)
class PercentOff:
    """A discount of ``percent`` % (``Decimal("12.5")``)."""

    percent: Decimal


@dataclass(frozen=True, slots=True)
class AmountOff:
    """A discount of a fixed amount in minor units."""

    amount_minor: int


Discount: TypeAlias = PercentOff | AmountOff


@dataclass(frozen=True, slots=True)
class CartPolicy:
    """Tenant rules for the cart; discounts above either limit need a manager."""

    currency: Currency
    tax: TaxPolicy
    discount_limit_percent: Decimal = Decimal(10)
    discount_limit_minor: int = 2000
    price_override_role: Role = Role.MANAGER
    rule: RoundingRule = RoundingRule.HALF_UP


@dataclass(frozen=True, slots=True)
class CartLine:
    """One line; ``quantity`` is pieces (integral) or kg. Voided lines stay for the record."""

    line_id: int
    item_id: str
    name: str
    tax_class: str
    department: str
    sold_by: SoldBy
    quantity: Decimal
    unit_price_minor: int
    catalog_price_minor: int
    discount: Discount | None = None
    approved_by: str | None = None
    voided: bool = False

    @property
    def overridden(self) -> bool:
        return self.unit_price_minor != self.catalog_price_minor


@dataclass(frozen=True, slots=True)
class LineTotal:
    """Money of one open line: gross − line discount − basket share = amount; plus tax."""

    line_id: int
    gross_minor: int
    line_discount_minor: int
    basket_discount_minor: int
    amount_minor: int
    tax_minor: int
    total_minor: int


@dataclass(frozen=True, slots=True)
class CartTotals:
    """The cart's money; ``total_minor`` is what the customer pays (before cash rounding)."""

    lines: tuple[LineTotal, ...]
    subtotal_minor: int
    line_discount_minor: int
    basket_discount_minor: int
    tax_minor: int
    total_minor: int
    tax: TaxResult

    @property
    def discount_minor(self) -> int:
        return self.line_discount_minor + self.basket_discount_minor


def _quantity(quantity: int | Decimal, sold_by: SoldBy) -> Decimal:
    if isinstance(quantity, float):  # a float quantity is a bug upstream
        raise TypeError("quantity must be an int or a Decimal")
    q = Decimal(quantity)
    if not q.is_finite() or q <= 0:
        raise InvalidQuantity(quantity=quantity, reason="must be more than zero")
    if sold_by is SoldBy.PIECE and q != q.to_integral_value():
        raise InvalidQuantity(quantity=quantity, reason="sold by the piece")
    return q if sold_by is SoldBy.WEIGHT else Decimal(int(q))


def discount_amount(discount: Discount, base_minor: int, rule: RoundingRule) -> int:
    """The minor units a discount takes off ``base_minor``, never more than the base."""
    if isinstance(discount, PercentOff):
        off = multiply(base_minor, discount.percent / 100, rule)
    else:
        off = discount.amount_minor
    return max(0, min(off, base_minor))


def _validate(discount: Discount) -> None:
    if isinstance(discount, PercentOff):
        if not (0 <= discount.percent <= 100):
            raise InvalidDiscount(value=discount.percent, reason="percent must be 0 to 100")
    elif discount.amount_minor < 0:
        raise InvalidDiscount(value=discount.amount_minor, reason="amount below zero")


@dataclass(frozen=True, slots=True)
class Cart:
    """A sale in progress; start with ``Cart(policy=…, cart_id=…)``."""

    policy: CartPolicy
    cart_id: str
    lines: tuple[CartLine, ...] = ()
    basket_discount: Discount | None = None
    basket_approved_by: str | None = None
    next_line_id: int = 1

    @property
    def open_lines(self) -> tuple[CartLine, ...]:
        return tuple(line for line in self.lines if not line.voided)

    def line(self, line_id: int) -> CartLine:
        """The open line ``line_id``."""
        for line in self.lines:
            if line.line_id == line_id and not line.voided:
                return line
        raise UnknownLine(line_id=line_id)

    def _with_line(self, new: CartLine) -> Cart:
        lines = tuple(new if line.line_id == new.line_id else line for line in self.lines)
        return replace(self, lines=lines)

    def add_item(
        self, item: Item, quantity: int | Decimal = 1, *, unit_price_minor: int | None = None
    ) -> Cart:
        """Add a line; ``quantity`` in kg for weight items; an embedded price sets the price.

        An item whose tax class the policy lacks is refused here (``UnknownTaxClass``), before it
        is a line: otherwise every later total of the sale would fail.
        """
        q = _quantity(quantity, item.sold_by)
        if not self.policy.tax.knows(item.tax_class):
            raise UnknownTaxClass(tax_class=item.tax_class, item_id=item.id, item_name=item.name)
        price = item.price_minor if unit_price_minor is None else unit_price_minor
        line = CartLine(
            line_id=self.next_line_id,
            item_id=item.id,
            name=item.name,
            tax_class=item.tax_class,
            department=item.department,
            sold_by=item.sold_by,
            quantity=q,
            unit_price_minor=price,
            catalog_price_minor=price,
        )
        return replace(self, lines=(*self.lines, line), next_line_id=self.next_line_id + 1)

    def add_scan(self, item: Item, scanned: ParsedBarcode) -> Cart:
        """Add what a scan found: an embedded price sets the price, an embedded weight the kg."""
        if isinstance(scanned, EmbeddedPrice):
            return self.add_item(item, 1, unit_price_minor=scanned.price_minor)
        if isinstance(scanned, EmbeddedWeight):
            return self.add_item(item, scanned.weight_kg)
        return self.add_item(item, 1)

    def change_quantity(self, line_id: int, quantity: int | Decimal) -> Cart:
        """Set a line's quantity (zero is not a quantity: void the line instead)."""
        line = self.line(line_id)
        return self._with_line(replace(line, quantity=_quantity(quantity, line.sold_by)))

    def void_line(self, line_id: int) -> Cart:
        """Void a line; it stays in the cart (and the journal) but counts for nothing."""
        return self._with_line(replace(self.line(line_id), voided=True))

    def override_price(
        self, line_id: int, unit_price_minor: int, *, approval: Approval | None
    ) -> Cart | ApprovalRequired:
        """Set a line's unit price; needs the policy's override role."""
        line = self.line(line_id)
        if unit_price_minor < 0:
            raise InvalidDiscount(value=unit_price_minor, reason="price below zero")
        if approval is None or not can_approve(approval, self.policy.price_override_role):
            return ApprovalRequired(
                action="price override",
                reason=f"{line.name}: {line.catalog_price_minor} → {unit_price_minor}",
                role=self.policy.price_override_role,
            )
        return self._with_line(
            replace(line, unit_price_minor=unit_price_minor, approved_by=approval.approver_id)
        )

    def _needs_approval(self, off_minor: int, base_minor: int) -> bool:
        if off_minor > self.policy.discount_limit_minor:
            return True
        return off_minor * 100 > self.policy.discount_limit_percent * base_minor

    def discount_line(
        self, line_id: int, discount: Discount, *, approval: Approval | None = None
    ) -> Cart | ApprovalRequired:
        """Discount one line; above the policy's limits a manager must approve."""
        _validate(discount)
        line = self.line(line_id)
        gross = self._gross(line)
        if isinstance(discount, AmountOff) and discount.amount_minor > gross:
            raise InvalidDiscount(value=discount.amount_minor, reason="more than the line")
        off = discount_amount(discount, gross, self.policy.rule)
        approver = line.approved_by
        if self._needs_approval(off, gross):
            if approval is None or not can_approve(approval, Role.MANAGER):
                return ApprovalRequired(action="line discount", reason=f"{line.name}: −{off}")
            approver = approval.approver_id
        return self._with_line(replace(line, discount=discount, approved_by=approver))

    def discount_basket(
        self, discount: Discount | None, *, approval: Approval | None = None
    ) -> Cart | ApprovalRequired:
        """Set (or with ``None`` clear) the basket discount; limits as for lines."""
        if discount is None:
            return replace(self, basket_discount=None, basket_approved_by=None)
        _validate(discount)
        base = sum(t.gross_minor - t.line_discount_minor for t in self.totals().lines)
        if isinstance(discount, AmountOff) and discount.amount_minor > base:
            raise InvalidDiscount(value=discount.amount_minor, reason="more than the basket")
        off = discount_amount(discount, base, self.policy.rule)
        approver = None
        if self._needs_approval(off, base):
            if approval is None or not can_approve(approval, Role.MANAGER):
                return ApprovalRequired(action="basket discount", reason=f"−{off}")
            approver = approval.approver_id
        return replace(self, basket_discount=discount, basket_approved_by=approver)

    def _gross(self, line: CartLine) -> int:
        return multiply(line.unit_price_minor, line.quantity, self.policy.rule)

    def totals(self) -> CartTotals:
        """All the money of the cart; see the module docstring for the order of steps."""
        rule = self.policy.rule
        lines = self.open_lines
        gross = [self._gross(line) for line in lines]
        line_off = [
            discount_amount(line.discount, g, rule) if line.discount is not None else 0
            for line, g in zip(lines, gross, strict=True)
        ]
        after = [g - d for g, d in zip(gross, line_off, strict=True)]
        basket_off = 0
        if self.basket_discount is not None:
            basket_off = discount_amount(self.basket_discount, sum(after), rule)
        shares = allocate(basket_off, after) if lines else []
        amounts = [a - s for a, s in zip(after, shares, strict=True)]
        tax = compute_tax(
            self.policy.tax,
            [TaxableLine(line.tax_class, a) for line, a in zip(lines, amounts, strict=True)],
        )
        exclusive = self.policy.tax.pricing is PricingMode.EXCLUSIVE
        line_totals = tuple(
            LineTotal(
                line_id=line.line_id,
                gross_minor=g,
                line_discount_minor=d,
                basket_discount_minor=s,
                amount_minor=a,
                tax_minor=t,
                total_minor=a + t if exclusive else a,
            )
            for line, g, d, s, a, t in zip(
                lines, gross, line_off, shares, amounts, tax.line_tax, strict=True
            )
        )
        return CartTotals(
            lines=line_totals,
            subtotal_minor=sum(gross),
            line_discount_minor=sum(line_off),
            basket_discount_minor=basket_off,
            tax_minor=tax.tax_minor,
            total_minor=sum(lt.total_minor for lt in line_totals),
            tax=tax,
        )
