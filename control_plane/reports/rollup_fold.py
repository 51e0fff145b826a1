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

import functools
from collections import defaultdict
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


@functools.lru_cache(maxsize=4096)
def micro(quantity: Decimal) -> int:
    """A quantity in millionths (a till sells few distinct quantities: each converted once,
    not a Decimal product per line; equal Decimals give equal millionths, so caching is exact)."""
    return int((quantity * MICRO).to_integral_value(ROUND_HALF_EVEN))


def rate_key(rate: Decimal) -> str:
    """A tax rate's key: its normalised decimal text."""
    return f"{rate.normalize():f}" if rate else "0"


#: Per key, the amounts each fact adds (in one fact kind's column order), summed at the end.
_Pending = defaultdict[tuple[object, ...], list[tuple[int, ...]]]


class _Table:
    """One table's rows being folded. Each fact only appends its amounts to its key's list
    (one kind of fact, one list: no dict nor keyword arguments per addition, which was half the
    fold's cost at ingest); :meth:`rows` sums the lists column by column and makes the
    :data:`Row` dicts once, at the end. Labels (an item's name) keep the greatest as they come."""

    __slots__ = ("labels", "pending", "spec")

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.pending: dict[tuple[int, ...], _Pending] = {}
        self.labels: dict[tuple[object, ...], list[str]] = {}

    def adds(self, *names: str) -> _Pending:
        """Where a kind of fact adds its amounts to the sums ``names``, in that order."""
        return self.pending.setdefault(
            tuple(self.spec.sums.index(name) for name in names), defaultdict(list)
        )

    def rows(self) -> dict[tuple[object, ...], Row]:
        spec = self.spec
        sums: dict[tuple[object, ...], list[int]] = {}
        for positions, pending in self.pending.items():
            for key, amounts in pending.items():
                into = sums.get(key)
                if into is None:
                    into = sums[key] = [0] * len(spec.sums)
                for position, column in zip(positions, zip(*amounts, strict=True), strict=True):
                    into[position] += sum(column)
        out: dict[tuple[object, ...], Row] = {}
        for key, values in sums.items():
            row: Row = dict(zip(spec.sums, values, strict=True))
            if spec.labels:
                row.update(zip(spec.labels, self.labels[key], strict=True))
            out[key] = row
        return out


def _item_key(items: _Table, group: tuple[object, ...], line: Line) -> tuple[object, ...]:
    """An item's key, its name kept (the greatest of its names)."""
    key = (*group, line.item_id[:ITEM_ID_LEN], line.department[:DEPARTMENT_LEN])
    name = line.name[:NAME_LEN]
    labels = items.labels.get(key)
    if labels is None:
        items.labels[key] = [name]
    elif name > labels[0]:
        labels[0] = name
    return key


def fold_facts(facts: Facts, group: Callable[[Where], tuple[object, ...]]) -> Folded:
    """Every rollup table's rows of ``facts``, each keyed ``(*group(where), *keys)``."""
    totals, tenders, items = _Table(TOTALS), _Table(TENDERS), _Table(ITEMS)
    taxes, staff = _Table(TAXES), _Table(STAFF)
    add = totals.adds(
        "sales_count", "sales_minor", "discounts_minor", "sales_tax_minor", "rounding_minor",
        "voided_lines", "manual_discounts", "overrides",
    )  # fmt: skip
    add_staff = staff.adds(
        "sales_count", "sales_minor", "voided_lines", "discounts_minor", "overrides"
    )
    add_tender = tenders.adds("count", "amount_minor", "payments", "paid_minor")
    add_item = items.adds("sold_micro", "sales_minor", "sale_lines")
    add_tax = taxes.adds("net_minor", "tax_minor", "gross_minor")
    for sale in facts.sales:
        g, cashier = group(sale.at), (sale.cashier or UNKNOWN_CASHIER)[:CASHIER_LEN]
        add[g].append(
            (1, sale.total_minor, sale.discount_minor, sale.tax_minor, sale.rounding_minor,
             sale.voided_lines, sale.manual_discounts, sale.overrides)
        )  # fmt: skip
        add_staff[(*g, cashier)].append(
            (1, sale.total_minor, sale.voided_lines, sale.discount_minor, sale.overrides)
        )
        for kind, amount in sale.tenders:
            add_tender[(*g, kind)].append((1, amount, 1, amount))
        for line in sale.lines:
            add_item[_item_key(items, g, line)].append((micro(line.quantity), line.total_minor, 1))
        for part in sale.taxes:
            add_tax[(*g, rate_key(part.rate))].append(
                (part.net_minor, part.tax_minor, part.gross_minor)
            )
    add = totals.adds(
        "returns_count", "returns_minor", "returns_tax_minor", "rounding_minor",
        "returns_unreceipted", "overrides",
    )  # fmt: skip
    add_staff = staff.adds("returns_count", "returns_minor", "overrides")
    add_tender = tenders.adds("count", "amount_minor", "refunded_minor")
    add_item = items.adds("returned_micro", "returns_minor", "return_lines")
    for ret in facts.returns:
        g, cashier = group(ret.at), (ret.cashier or UNKNOWN_CASHIER)[:CASHIER_LEN]
        add[g].append(
            (1, ret.refund_minor, ret.tax_minor, -ret.rounding_minor, int(not ret.with_receipt),
             int(ret.approved))
        )  # fmt: skip
        add_staff[(*g, cashier)].append((1, ret.refund_minor, int(ret.approved)))
        for kind, amount in ret.refunds:
            add_tender[(*g, kind)].append((1, -amount, amount))
        for line in ret.lines:
            add_item[_item_key(items, g, line)].append((micro(line.quantity), line.total_minor, 1))
        for part in ret.taxes:
            add_tax[(*g, rate_key(part.rate))].append(
                (-part.net_minor, -part.tax_minor, -part.gross_minor)
            )
    add, add_staff = totals.adds("voids_count", "overrides"), staff.adds("voids", "overrides")
    for void in facts.voids:
        g, approved = group(void.at), int(void.approved)
        add[g].append((1, approved))
        add_staff[(*g, (void.cashier or UNKNOWN_CASHIER)[:CASHIER_LEN])].append((1, approved))
    moved = {True: totals.adds("cash_in_minor"), False: totals.adds("cash_out_minor")}
    for move in facts.cash_moves:
        moved[move.direction == "in"][group(move.at)].append((move.amount_minor,))
    add = totals.adds("drawer_opens")
    for opened in facts.drawer_opens:
        add[group(opened.at)].append((1,))
    tables = {table.spec.name: table for table in (totals, tenders, items, taxes, staff)}
    return {spec.name: tables[spec.name].rows() for spec in SPECS}


def merge_into(into: Folded, more: Folded) -> Folded:
    """``more``'s rows added to ``into`` (sums added, labels the greatest): a page folded in
    chunks sums to the page folded at once."""
    for spec in SPECS:
        rows = into[spec.name]
        for key, row in more[spec.name].items():
            have = rows.get(key)
            if have is None:
                rows[key] = row
                continue
            for name in spec.sums:
                have[name] = int(have[name]) + int(row[name])
            for name in spec.labels:
                have[name] = max(str(have[name]), str(row[name]))
    return into


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
