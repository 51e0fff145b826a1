"""Folding one device's journal records into stock effects: pure, the cloud's twin of the
register's :class:`edge.stock.on_hand.OnHandProjection`.

How it works: records are folded in ``seq`` order into a :class:`Level` per GTIN-14 of the
device's store — ``set_to`` (the last count's figure, when the run holds a count) plus ``delta``
(every movement after it) — so a run folded at once or in several runs gives the same figure
(``Level.apply`` composes). Sales take away and returns give back (their lines name the
register's item id: ``gtin_of`` maps it through the tenant's catalog, as the register maps it
through its own), ``stock.received`` and ``stock.adjusted`` add their (signed) quantities, a
count sets the level, ``stock.transfer_sent`` takes away and ``stock.transfer_received`` adds.
The two halves of a transfer are also kept as :class:`TransferHalf` so the projection can
record them against the transfer: what was sent and is not received yet is in transit and in
no store's figure, so it can never be counted twice. Lines the fold cannot place are counted in
``skipped`` by reason, never guessed (the same reasons as the register's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from protocols.stock_transfer import (
    InvalidTransferBody,
    as_gtin14,
    transfer_received,
    transfer_sent,
)
from protocols.vocabulary import JournalKind

K = JournalKind
#: The journal kinds that move stock; every other kind is left out of the read.
MOVING_KINDS = (
    K.SALE_COMPLETED,
    K.SALE_RETURNED,
    K.STOCK_RECEIVED,
    K.STOCK_ADJUSTED,
    K.STOCK_COUNT_COMMITTED,
    K.STOCK_TRANSFER_SENT,
    K.STOCK_TRANSFER_RECEIVED,
)
DAY_MS = 86_400_000
#: Most units one line may move or a count may find: beyond it a line is a mistake (a scanned
#: barcode typed as a quantity), skipped and counted, never allowed to overflow a figure.
MAX_UNITS = 10**9

#: A record as the projection reads it: (kind, ts in epoch ms, body).
Record = tuple[str, int, Mapping[str, Any]]


@dataclass(slots=True)
class Level:
    """What a run of records does to one figure: ``set_to`` (a count) then ``delta``."""

    set_to: int | None = None
    delta: int = 0

    def apply(self, before: int) -> int:
        """The figure after the run, given the figure before it."""
        return (before if self.set_to is None else self.set_to) + self.delta

    def count(self, counted: int) -> None:
        self.set_to, self.delta = counted, 0

    def move(self, units: int) -> None:
        self.delta += units


@dataclass(frozen=True, slots=True)
class TransferHalf:
    """One half of a transfer: ``store`` is the other store it names (to or from)."""

    transfer_id: str
    store: str | None
    ts: int
    units: Mapping[str, int]


@dataclass(slots=True)
class Effects:
    """What a run of one device's records does to its store's stock."""

    levels: dict[str, Level] = field(default_factory=dict)
    item_ids: dict[str, str] = field(default_factory=dict)
    sold: Counter[tuple[str, int]] = field(default_factory=Counter)
    sent: list[TransferHalf] = field(default_factory=list)
    received: list[TransferHalf] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def level(self, gtin: str) -> Level:
        found = self.levels.get(gtin)
        if found is None:
            found = self.levels[gtin] = Level()
        return found


def item_codes(records: Iterable[Record]) -> set[str]:
    """The codes sales and returns name that are not GTINs: item ids for the catalog to map."""
    codes: set[str] = set()
    for kind, _, body in records:
        key = _CODE_KEY.get(kind)
        if key is not None:
            for line in _lines(body):
                code = line.get(key)
                if isinstance(code, str) and as_gtin14(code) is None:
                    codes.add(code)
    return codes


def fold(records: Iterable[Record], *, gtin_of: Mapping[str, str]) -> Effects:
    """Fold records (in seq order) into effects; ``gtin_of`` maps item id → GTIN-14."""
    effects = Effects()
    for kind, ts, body in records:
        if kind == K.STOCK_COUNT_COMMITTED:
            for line in _lines(body):
                gtin, counted = line.get("gtin"), line.get("counted")
                if (
                    isinstance(gtin, str)
                    and isinstance(counted, int)
                    and not isinstance(counted, bool)
                    and 0 <= counted <= MAX_UNITS
                    and as_gtin14(gtin) == gtin
                ):
                    effects.level(gtin).count(counted)
                else:
                    effects.skipped["bad_count_line"] += 1
        elif kind in _SIGN:
            _move(effects, kind, ts, body, gtin_of)
        elif kind in (K.STOCK_TRANSFER_SENT, K.STOCK_TRANSFER_RECEIVED):
            _transfer(effects, kind, ts, body)
    return effects


_SIGN: dict[str, int] = {
    K.SALE_COMPLETED: -1,
    K.SALE_RETURNED: +1,
    K.STOCK_RECEIVED: +1,
    K.STOCK_ADJUSTED: +1,
}
_CODE_KEY: dict[str, str] = {
    K.SALE_COMPLETED: "sku",
    K.SALE_RETURNED: "item_id",
    K.STOCK_RECEIVED: "gtin",
    K.STOCK_ADJUSTED: "gtin",
}


def _move(
    effects: Effects, kind: str, ts: int, body: Mapping[str, Any], gtin_of: Mapping[str, str]
) -> None:
    sign, key = _SIGN[kind], _CODE_KEY[kind]
    for line in _lines(body):
        code = line.get(key)
        if not isinstance(code, str):
            effects.skipped["no_code"] += 1
            continue
        gtin = gtin_of.get(code) or as_gtin14(code)
        if gtin is None:
            effects.skipped["not_a_gtin"] += 1
            continue
        units = whole_units(line.get("quantity"))
        if units is None:
            effects.skipped["not_whole_units"] += 1
            continue
        effects.level(gtin).move(sign * units)
        if kind == K.SALE_COMPLETED:
            effects.sold[gtin, ts // DAY_MS] += units
        if code in gtin_of:  # an item id the catalog knows: the console's link to the item
            effects.item_ids[gtin] = code


def _transfer(effects: Effects, kind: str, ts: int, body: Mapping[str, Any]) -> None:
    try:
        if kind == K.STOCK_TRANSFER_SENT:
            sent = transfer_sent(body)
            half = TransferHalf(sent.transfer_id, sent.to_store, ts, sent.units())
            effects.sent.append(half)
            sign = -1
        else:
            received = transfer_received(body)
            half = TransferHalf(received.transfer_id, received.from_store, ts, received.units())
            effects.received.append(half)
            sign = +1
    except InvalidTransferBody:
        effects.skipped["invalid_transfer"] += 1
        return
    for gtin, units in half.units.items():
        effects.level(gtin).move(sign * units)


def whole_units(raw: object) -> int | None:
    """A journal quantity (string Decimal or int) as whole units; None for weighed goods (and
    for a quantity past :data:`MAX_UNITS`)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    if not value.is_finite() or value != value.to_integral_value() or abs(value) > MAX_UNITS:
        return None
    return int(value)


def _lines(body: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    lines = body.get("lines") if isinstance(body, Mapping) else None
    if not isinstance(lines, list):
        return ()
    return [line for line in lines if isinstance(line, Mapping)]
