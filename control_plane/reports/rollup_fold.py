"""Folding decoded journal facts into the rows of every rollup table (pure: no database).

Why one fold: the rollups the ingest's records are caught up into and the reports folded from
the journal record by record (``Filters(rollups=False)``, the check) go through this same
function, so a rollup row is by construction the sum a report would fold; :func:`regroup` then
adds rows up the way a rollup read's ``GROUP BY`` does.

The rules, shared by both paths:

* a quantity is kept in millionths (``*_micro``), rounded half-even beyond six decimals (a scale
  weighs to the gram: three);
* a tax rate is keyed by its normalised decimal text (``0.20`` and ``0.2`` are one rate);
* a sale without a cashier (the simulated register's summary) is the cashier ``(unknown)``;
* an item's name is a label: a group of rows shows the greatest of its names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_EVEN, Decimal

from control_plane.reports.facts import Facts, Line, Where
from control_plane.reports.rollup_tables import (
    CASHIER_LEN,
    DEPARTMENT_LEN,
    ITEM_ID_LEN,
    ITEMS,
    NAME_LEN,
    SPECS,
    STAFF,
    TAXES,
    TENDERS,
    TOTALS,
    Spec,
)

#: One rollup row: its sums (int) and labels (str).
Row = dict[str, int | str]
#: Per rollup table, its rows by (group prefix..., *the table's keys).
Folded = dict[str, dict[tuple[object, ...], Row]]
UNKNOWN_CASHIER = "(unknown)"
MICRO = Decimal(1_000_000)


def micro(quantity: Decimal) -> int:
    """A quantity in millionths."""
    return int((quantity * MICRO).to_integral_value(ROUND_HALF_EVEN))


def rate_key(rate: Decimal) -> str:
    """A tax rate's key: its normalised decimal text."""
    return f"{rate.normalize():f}" if rate else "0"


class _Rows:
    """Rows of every table being folded, grouped by ``group(where)`` then the table's keys."""

    def __init__(self, group: Callable[[Where], tuple[object, ...]]) -> None:
        self.group = group
        self.folded: Folded = {spec.name: {} for spec in SPECS}

    def row(self, spec: Spec, at: Where, *keys: object) -> Row:
        table = self.folded[spec.name]
        key = (*self.group(at), *keys)
        found = table.get(key)
        if found is None:
            found = table[key] = dict.fromkeys(spec.sums, 0)
            found.update(dict.fromkeys(spec.labels, ""))
        return found


def _add(row: Row, **amounts: int) -> None:
    for name, amount in amounts.items():
        row[name] = int(row[name]) + amount


def _item(rows: _Rows, at: Where, line: Line) -> Row:
    row = rows.row(ITEMS, at, line.item_id[:ITEM_ID_LEN], line.department[:DEPARTMENT_LEN])
    row["name"] = max(str(row["name"]), line.name[:NAME_LEN])
    return row


def fold_facts(facts: Facts, group: Callable[[Where], tuple[object, ...]]) -> Folded:
    """Every rollup table's rows of ``facts``, each keyed ``(*group(where), *keys)``."""
    rows = _Rows(group)
    for sale in facts.sales:
        at, cashier = sale.at, (sale.cashier or UNKNOWN_CASHIER)[:CASHIER_LEN]
        _add(
            rows.row(TOTALS, at), sales_count=1, sales_minor=sale.total_minor,
            discounts_minor=sale.discount_minor, sales_tax_minor=sale.tax_minor,
            rounding_minor=sale.rounding_minor, voided_lines=sale.voided_lines,
            manual_discounts=sale.manual_discounts, overrides=sale.overrides,
        )  # fmt: skip
        _add(
            rows.row(STAFF, at, cashier), sales_count=1, sales_minor=sale.total_minor,
            voided_lines=sale.voided_lines, discounts_minor=sale.discount_minor,
            overrides=sale.overrides,
        )  # fmt: skip
        for kind, amount in sale.tenders:
            _add(
                rows.row(TENDERS, at, kind), count=1, amount_minor=amount, payments=1,
                paid_minor=amount,
            )  # fmt: skip
        for line in sale.lines:
            _add(
                _item(rows, at, line), sold_micro=micro(line.quantity),
                sales_minor=line.total_minor, sale_lines=1,
            )  # fmt: skip
        for part in sale.taxes:
            _add(
                rows.row(TAXES, at, rate_key(part.rate)), net_minor=part.net_minor,
                tax_minor=part.tax_minor, gross_minor=part.gross_minor,
            )  # fmt: skip
    for ret in facts.returns:
        at, cashier = ret.at, (ret.cashier or UNKNOWN_CASHIER)[:CASHIER_LEN]
        _add(
            rows.row(TOTALS, at), returns_count=1, returns_minor=ret.refund_minor,
            returns_tax_minor=ret.tax_minor, rounding_minor=-ret.rounding_minor,
            returns_unreceipted=int(not ret.with_receipt), overrides=int(ret.approved),
        )  # fmt: skip
        _add(
            rows.row(STAFF, at, cashier), returns_count=1, returns_minor=ret.refund_minor,
            overrides=int(ret.approved),
        )  # fmt: skip
        for kind, amount in ret.refunds:
            _add(rows.row(TENDERS, at, kind), count=1, amount_minor=-amount, refunded_minor=amount)
        for line in ret.lines:
            _add(
                _item(rows, at, line), returned_micro=micro(line.quantity),
                returns_minor=line.total_minor, return_lines=1,
            )  # fmt: skip
        for part in ret.taxes:
            _add(
                rows.row(TAXES, at, rate_key(part.rate)), net_minor=-part.net_minor,
                tax_minor=-part.tax_minor, gross_minor=-part.gross_minor,
            )  # fmt: skip
    for void in facts.voids:
        approved = int(void.approved)
        _add(rows.row(TOTALS, void.at), voids_count=1, overrides=approved)
        cashier = (void.cashier or UNKNOWN_CASHIER)[:CASHIER_LEN]
        _add(rows.row(STAFF, void.at, cashier), voids=1, overrides=approved)
    for move in facts.cash_moves:
        column = "cash_in_minor" if move.direction == "in" else "cash_out_minor"
        _add(rows.row(TOTALS, move.at), **{column: move.amount_minor})
    for opened in facts.drawer_opens:
        _add(rows.row(TOTALS, opened.at), drawer_opens=1)
    return rows.folded


def regroup(
    rows: Iterable[tuple[tuple[object, ...], Row]], spec: Spec, *, by: tuple[str, ...],
    keep: int,
) -> dict[tuple[object, ...], Row]:  # fmt: skip
    """Rows keyed ``(*prefix, *spec.keys)`` added up by their first ``keep`` prefix parts and
    the keys ``by``: what a rollup read's ``GROUP BY`` gives (labels: the greatest)."""
    positions = [spec.keys.index(name) for name in by]
    out: dict[tuple[object, ...], Row] = {}
    for key, row in rows:
        prefix, keys = key[: len(key) - len(spec.keys)], key[len(key) - len(spec.keys) :]
        into = out.setdefault(
            (*prefix[:keep], *(keys[p] for p in positions)),
            dict.fromkeys(spec.sums, 0) | dict.fromkeys(spec.labels, ""),
        )
        for name in spec.sums:
            into[name] = int(into[name]) + int(row[name])
        for name in spec.labels:
            into[name] = max(str(into[name]), str(row[name]))
    return out
