"""Tax on a basket: classes with Decimal rates, inclusive or exclusive prices, stated rounding.

How it works: the cart hands over one ``TaxableLine`` per open line — the line amount after all
discounts, gross when the tenant prices tax-inclusive, net when tax-exclusive. ``compute_tax``
returns the tax of every line and one ``TaxRow`` per rate (net, tax, gross). Rounding happens
either per line (each line's tax rounded, rows are sums) or per total (each rate's tax rounded
once, then allocated to its lines by largest remainder). Either way the rows and the lines are
exact integer sums of each other, so the summary always reconciles to the basket total:
inclusive ``Σ gross = Σ amounts``; exclusive ``Σ gross = Σ amounts + Σ tax``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from edge.checkout.errors import UnknownTaxClass
from edge.checkout.money import RoundingRule, allocate, round_to_int


class PricingMode(enum.Enum):
    """Whether shelf prices include tax (Europe) or tax is added at the till (US)."""

    INCLUSIVE = "inclusive"
    EXCLUSIVE = "exclusive"


class TaxRounding(enum.Enum):
    """Where tax is rounded to minor units."""

    PER_LINE = "per_line"
    PER_TOTAL = "per_total"


@dataclass(frozen=True, slots=True)
class TaxClass:
    """A tax class an item belongs to; ``rate`` is a fraction (``Decimal("0.081")`` = 8.1 %)."""

    code: str
    rate: Decimal
    label: str = ""


@dataclass(frozen=True, slots=True)
class TaxPolicy:
    """A tenant's tax configuration."""

    classes: tuple[TaxClass, ...]
    pricing: PricingMode = PricingMode.INCLUSIVE
    rounding: TaxRounding = TaxRounding.PER_TOTAL
    rule: RoundingRule = RoundingRule.HALF_UP

    def knows(self, code: str) -> bool:
        """Whether ``code`` is in the tax table (a line of any other class cannot be taxed)."""
        return any(tax_class.code == code for tax_class in self.classes)

    def tax_class(self, code: str) -> TaxClass:
        """The class for ``code``; an unknown code is a configuration error (UnknownTaxClass)."""
        for tax_class in self.classes:
            if tax_class.code == code:
                return tax_class
        raise UnknownTaxClass(tax_class=code)


@dataclass(frozen=True, slots=True)
class TaxableLine:
    """One line's amount after discounts, in the policy's pricing basis."""

    tax_class: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class TaxRow:
    """One rate on the tax summary: net + tax = gross, exactly."""

    rate: Decimal
    codes: tuple[str, ...]
    net_minor: int
    tax_minor: int
    gross_minor: int


@dataclass(frozen=True, slots=True)
class TaxResult:
    """The tax of each line (same order as given) and the summary by rate."""

    line_tax: tuple[int, ...]
    rows: tuple[TaxRow, ...]

    @property
    def tax_minor(self) -> int:
        return sum(row.tax_minor for row in self.rows)

    @property
    def net_minor(self) -> int:
        return sum(row.net_minor for row in self.rows)

    @property
    def gross_minor(self) -> int:
        return sum(row.gross_minor for row in self.rows)


def tax_of(amount_minor: int, rate: Decimal, pricing: PricingMode, rule: RoundingRule) -> int:
    """Tax contained in (inclusive) or added to (exclusive) an amount, rounded by ``rule``."""
    if pricing is PricingMode.INCLUSIVE:
        return round_to_int(Decimal(amount_minor) * rate / (1 + rate), rule)
    return round_to_int(Decimal(amount_minor) * rate, rule)


def compute_tax(policy: TaxPolicy, lines: Sequence[TaxableLine]) -> TaxResult:
    """Tax per line and per rate; reconciles exactly (see the module docstring)."""
    line_tax = [0] * len(lines)
    groups: dict[Decimal, list[int]] = {}
    for i, line in enumerate(lines):
        groups.setdefault(policy.tax_class(line.tax_class).rate, []).append(i)
    rows: list[TaxRow] = []
    for rate in sorted(groups):
        members = groups[rate]
        amounts = [lines[i].amount_minor for i in members]
        if policy.rounding is TaxRounding.PER_LINE:
            taxes = [tax_of(a, rate, policy.pricing, policy.rule) for a in amounts]
        else:
            total_tax = tax_of(sum(amounts), rate, policy.pricing, policy.rule)
            taxes = allocate(total_tax, [abs(a) for a in amounts])
        for i, tax in zip(members, taxes, strict=True):
            line_tax[i] = tax
        base, tax = sum(amounts), sum(taxes)
        if policy.pricing is PricingMode.INCLUSIVE:
            net, gross = base - tax, base
        else:
            net, gross = base, base + tax
        codes = tuple(sorted({lines[i].tax_class for i in members}))
        rows.append(TaxRow(rate, codes, net, tax, gross))
    return TaxResult(tuple(line_tax), tuple(rows))
