"""The cashier's side of a transfer between stores: send goods to another store, book them in.

How it works: both halves are journaled by the register that does them, in one ledger
transaction each, offline or not (:mod:`protocols.stock_transfer` has the bodies and says what
each half means). The sending register makes the transfer id (it goes on the docket with the
goods); the receiving register books what arrived against that id, counted by its own staff, so
a difference between the two is the cloud's finding, never the cashier's guess. A line names an
item by a scanned GTIN or by the register's item id; both become the GTIN-14 the stock figures
are kept by. Refusals are :class:`~edge.pos.errors.NotAllowed` (the kiosk answers 409) or the
catalog's :class:`~edge.checkout.errors.UnknownItem`; nothing is journaled when one is raised.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from edge.checkout.catalog import CatalogView
from edge.checkout.errors import UnknownItem
from edge.pos.errors import NotAllowed
from edge.pos.register import Register
from edge.stock.movements import STOCK_TRANSFER_RECEIVED, STOCK_TRANSFER_SENT, gtin14_or_none
from edge.stock.on_hand import CatalogGtins
from protocols.stock_transfer import InvalidTransferBody, transfer_received, transfer_sent


def new_transfer_id(register_id: str) -> str:
    """``T-<register>-<10 hex>``: unique without asking anyone (the register may be offline)."""
    return f"T-{register_id[:40]}-{uuid.uuid4().hex[:10].upper()}"


def gtin_lines(catalog: CatalogView, lines: Mapping[str, int]) -> dict[str, int]:
    """Scanned codes or item ids → GTIN-14 → units (two codes of one item add up)."""
    gtins = CatalogGtins(catalog)
    out: dict[str, int] = {}
    for code, units in lines.items():
        gtin = gtin14_or_none(code)
        if gtin is None:
            try:
                gtin = gtins[code]
            except KeyError as err:
                raise UnknownItem(key=code, kind="code") from err
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise NotAllowed(f"Transfer whole units above 0 ({code}: {units}).")
        out[gtin] = out.get(gtin, 0) + units
    if not out:
        raise NotAllowed("Scan the items of the transfer first.")
    return out


async def send_transfer(
    register: Register, *, to_store: str, lines: Mapping[str, int], transfer_id: str | None = None
) -> str:
    """Journal ``stock.transfer_sent``; returns the transfer id for the docket."""
    async with register.command():
        cashier = register.require_cashier()
        units = gtin_lines(register.catalog, lines)
        try:
            body = transfer_sent(
                {
                    "transfer_id": transfer_id or new_transfer_id(register.register_id),
                    "to_store": to_store,
                    "lines": _lines(units),
                    "by": cashier.id,
                }
            )
        except InvalidTransferBody as err:
            raise NotAllowed(f"The transfer cannot be booked: {err.reason}.") from err
        await register.ledger.append_event(STOCK_TRANSFER_SENT, body.to_body())
        return body.transfer_id


async def receive_transfer(
    register: Register,
    *,
    transfer_id: str,
    lines: Mapping[str, int],
    from_store: str | None = None,
) -> None:
    """Journal ``stock.transfer_received``: what arrived, as the store counted it."""
    async with register.command():
        cashier = register.require_cashier()
        units = gtin_lines(register.catalog, lines)
        try:
            received = transfer_received(
                {
                    "transfer_id": transfer_id,
                    "from_store": from_store,
                    "lines": _lines(units),
                    "by": cashier.id,
                }
            )
        except InvalidTransferBody as err:
            raise NotAllowed(f"The transfer cannot be booked: {err.reason}.") from err
        await register.ledger.append_event(STOCK_TRANSFER_RECEIVED, received.to_body())


def _lines(units: Mapping[str, int]) -> list[dict[str, object]]:
    return [{"gtin": gtin, "quantity": quantity} for gtin, quantity in units.items()]
