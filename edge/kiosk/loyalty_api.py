"""The kiosk's loyalty commands: pay with points or store credit, take the customer off the sale.

A customer is attached by scanning their card (the ordinary ``/api/scan``: the register reads
``SFC1:`` codes before item lookup); these redeem against what the register may redeem now and
answer, like every command, with the register's new state or a 409 for the cashier.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from edge.kiosk.api import OnCart, ScreenDep, Till, run
from edge.pos import customers

router = APIRouter(prefix="/api")


class Points(OnCart):
    """Points to redeem; none: as many as may be and are due."""

    points: int | None = Field(None, ge=1)


class Credit(OnCart):
    """Store credit to redeem in minor units; none: as much as may be and is due."""

    amount_minor: int | None = Field(None, ge=1)


class Detach(BaseModel):
    """Take the attached customer off the sale shown."""

    cart_id: str | None = None


@router.post("/pay/points")
async def pay_points(body: Points, screen: ScreenDep, reg: Till) -> JSONResponse:
    async def act() -> None:
        await customers.pay_points(reg, body.points, cart_id=body.cart_id)

    return await run(screen, act())


@router.post("/pay/credit")
async def pay_credit(body: Credit, screen: ScreenDep, reg: Till) -> JSONResponse:
    async def act() -> None:
        await customers.pay_store_credit(reg, body.amount_minor, cart_id=body.cart_id)

    return await run(screen, act())


class Search(BaseModel):
    """A name, phone number or e-mail typed by the cashier (sent in a body, never a URL)."""

    q: str = Field(min_length=1, max_length=200)


class AttachId(OnCart):
    """A customer chosen from the search's results."""

    customer_id: str = Field(min_length=1, max_length=32)


@router.post("/customer/search")
async def search(body: Search, screen: ScreenDep, reg: Till) -> JSONResponse:
    """Customers matching the text (online only): ids and masked names."""
    found: list[tuple[str, str]] = []

    async def act() -> None:
        found.extend(await customers.search(reg, body.q))

    answer = await run(screen, act())
    if answer.status_code != 200:
        return answer
    return JSONResponse(
        {"customers": [{"id": i, "name": n} for i, n in found], "state": screen.state()}
    )


@router.post("/customer/attach")
async def attach(body: AttachId, screen: ScreenDep, reg: Till) -> JSONResponse:
    """Attach a customer chosen from the search."""
    return await run(screen, customers.attach(reg, body.customer_id, cart_id=body.cart_id))


@router.post("/customer/detach")
async def detach(body: Detach, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, customers.detach(reg, cart_id=body.cart_id))
