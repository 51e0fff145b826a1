"""The register's stock commands: send goods to another store, book a transfer in, see on-hand.

The cashier side of :mod:`edge.stock.transfers` over the same JSON API as the till's commands
(a refusal answers 409 with ``code`` and ``message``, like :mod:`edge.kiosk.api`); a screen or a
handheld posts here. On-hand is the register's own projection of its ledger
(:mod:`edge.stock.on_hand`), the figure the cloud's agrees with for this store.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from edge.checkout.errors import CheckoutError
from edge.kiosk.api import ScreenDep, Till, _refused, error_code
from edge.pos.errors import RegisterError
from edge.stock import transfers
from edge.stock.on_hand import CatalogGtins, expected_on_hand
from protocols.stock_transfer import MAX_LINES

router = APIRouter(prefix="/api/stock")

#: Scanned code or item id → whole units.
Lines = dict[str, int]


class SendTransfer(BaseModel):
    to_store: str = Field(min_length=1, max_length=64)
    lines: Lines = Field(max_length=MAX_LINES)
    transfer_id: str | None = Field(default=None, max_length=64)


class ReceiveTransfer(BaseModel):
    transfer_id: str = Field(min_length=1, max_length=64)
    lines: Lines = Field(max_length=MAX_LINES)
    from_store: str | None = Field(default=None, max_length=64)


@router.post("/transfers/send")
async def send(body: SendTransfer, screen: ScreenDep, reg: Till) -> JSONResponse:
    """Goods leave for ``to_store``: answers the transfer id to write on the docket."""
    try:
        transfer_id = await transfers.send_transfer(
            reg, to_store=body.to_store, lines=body.lines, transfer_id=body.transfer_id
        )
    except (CheckoutError, RegisterError) as err:
        return _refused(screen, error_code(err), err.cashier_message)
    return JSONResponse({"transfer_id": transfer_id, "state": screen.state()})


@router.post("/transfers/receive")
async def receive(body: ReceiveTransfer, screen: ScreenDep, reg: Till) -> JSONResponse:
    """What arrived of a transfer, as counted here."""
    try:
        await transfers.receive_transfer(
            reg, transfer_id=body.transfer_id, lines=body.lines, from_store=body.from_store
        )
    except (CheckoutError, RegisterError) as err:
        return _refused(screen, error_code(err), err.cashier_message)
    return JSONResponse({"transfer_id": body.transfer_id, "state": screen.state()})


@router.get("/on-hand")
async def on_hand(reg: Till) -> dict[str, int]:
    """GTIN-14 → units this register's ledger says are on the shelf."""
    return await expected_on_hand(reg.ledger, item_gtins=CatalogGtins(reg.catalog))
