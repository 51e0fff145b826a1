"""The kiosk's commands: one small JSON POST per thing a cashier can do.

Every command answers with the register's whole new state (so the screen that acted redraws at
once, before the WebSocket push arrives). A refused command answers 409 with ``code`` and a
``message`` for the cashier — and, for ``approval_required``, what the manager approves — and
the same message becomes the register's alert, so every open screen shows it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from edge.checkout.cart import AmountOff, Discount, PercentOff
from edge.checkout.errors import BarcodeError, CheckoutError, UnknownItem
from edge.checkout.shift import CashDirection
from edge.kiosk.screen import Screen
from edge.pos import payments, returns_desk, shift_desk
from edge.pos.errors import ApprovalNeeded, RegisterError
from edge.pos.metrics import REFUSALS
from edge.pos.register import PinEntry, Register, parse_quantity
from edge.pos.view import item_view, returnable_view

router = APIRouter(prefix="/api")


def get_screen(request: Request) -> Screen:
    screen: Screen = request.app.state.screen
    return screen


def get_register(screen: Annotated[Screen, Depends(get_screen)]) -> Register:
    if not screen.enrolled or screen.register is None:
        raise HTTPException(503, "This register is not enrolled yet.")
    return screen.register


Till = Annotated[Register, Depends(get_register)]
ScreenDep = Annotated[Screen, Depends(get_screen)]


class Manager(BaseModel):
    """A manager's PIN typed to approve one command."""

    employee_id: str
    pin: str

    def entry(self) -> PinEntry:
        return PinEntry(self.employee_id, self.pin)


class OnCart(BaseModel):
    """Commands on "this sale" say which sale the screen showed."""

    cart_id: str | None = None


class SignIn(BaseModel):
    employee_id: str
    pin: str


class Unlock(BaseModel):
    employee_id: str
    manager: Manager | None = None


class Scan(OnCart):
    code: str = Field(max_length=64)


class AddItem(OnCart):
    item_id: str
    quantity: str = "1"


class Quantity(OnCart):
    quantity: str = Field(max_length=16)


class Price(OnCart):
    price_minor: int
    manager: Manager | None = None


class DiscountIn(OnCart):
    line_id: int | None = None
    percent: str | None = None
    amount_minor: int | None = None
    manager: Manager | None = None


class Approvable(OnCart):
    manager: Manager | None = None


class Resume(OnCart):
    parked_id: str


class Cash(OnCart):
    received_minor: int


class Card(OnCart):
    amount_minor: int | None = None


class Receipt(BaseModel):
    receipt: str = Field(max_length=32)


class Refund(Receipt):
    quantities: dict[int, str]


class Amount(BaseModel):
    amount_minor: int


class CashMove(Amount):
    direction: CashDirection
    reason: str = ""


async def run(
    screen: Screen, action: Awaitable[object], *, scanned: str | None = None
) -> JSONResponse:
    """Await a command; answer the new state, or 409 with what the cashier needs to know.

    ``scanned`` is the code as the scanner read it, for the unknown-item prompt.
    """
    try:
        await action
    except ApprovalNeeded as err:
        return _refused(screen, err.code, err.cashier_message, action=err.action, alert=False)
    except (UnknownItem, BarcodeError) as err:
        scanned = scanned or getattr(err, "code", None) or getattr(err, "key", None)
        return _refused(screen, "unknown_item", err.cashier_message, code_scanned=scanned)
    except (CheckoutError, RegisterError) as err:
        return _refused(screen, error_code(err), err.cashier_message)
    except ValueError as err:
        return _refused(screen, "bad_input", str(err))
    return JSONResponse({"state": screen.state()})


def error_code(err: CheckoutError | RegisterError) -> str:
    """``tender_short`` for ``TenderShort``: a stable code the screen and tests can match."""
    if isinstance(err, RegisterError):
        return err.code
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(err).__name__).lower()


def _refused(
    screen: Screen, code: str, message: str, *, alert: bool = True, **extra: Any
) -> JSONResponse:
    REFUSALS.labels(code=code).inc()
    if alert and screen.register is not None:
        screen.register.raise_alert(code, message, extra.get("code_scanned"))
    return JSONResponse(
        {"error": {"code": code, "message": message, **extra}, "state": screen.state()},
        status_code=409,
    )


def _discount(body: DiscountIn) -> Discount | None:
    if body.percent is not None:
        return PercentOff(parse_quantity(body.percent))
    if body.amount_minor is not None:
        return AmountOff(body.amount_minor)
    return None


def _manager(manager: Manager | None) -> PinEntry | None:
    return None if manager is None else manager.entry()


@router.get("/state")
async def state(screen: ScreenDep) -> dict[str, Any]:
    return screen.state()


@router.post("/signin")
async def sign_in(body: SignIn, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, reg.sign_in(body.employee_id, body.pin))


@router.post("/lock")
async def lock(screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, reg.lock())


@router.post("/unlock")
async def unlock(body: Unlock, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, reg.unlock(body.employee_id, _manager(body.manager)))


@router.post("/scan")
async def scan(body: Scan, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, reg.scan(body.code, cart_id=body.cart_id), scanned=body.code)


@router.post("/items")
async def add_item(body: AddItem, screen: ScreenDep, reg: Till) -> JSONResponse:
    async def act() -> None:
        await reg.add_item(body.item_id, parse_quantity(body.quantity), cart_id=body.cart_id)

    return await run(screen, act())


@router.get("/search")
async def search(q: str, screen: ScreenDep, reg: Till) -> list[dict[str, Any]]:
    return [item_view(i, reg.config.currency) for i in reg.catalog.search(q, limit=12)]


@router.post("/lines/{line_id}/quantity")
async def quantity(line_id: int, body: Quantity, screen: ScreenDep, reg: Till) -> JSONResponse:
    async def act() -> None:
        await reg.set_quantity(line_id, parse_quantity(body.quantity), cart_id=body.cart_id)

    return await run(screen, act())


@router.post("/lines/{line_id}/void")
async def void_line(line_id: int, body: OnCart, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, reg.void_line(line_id, cart_id=body.cart_id))


@router.post("/lines/{line_id}/price")
async def price(line_id: int, body: Price, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(
        screen,
        reg.override_price(
            line_id, body.price_minor, cart_id=body.cart_id, manager=_manager(body.manager)
        ),
    )


@router.post("/discount")
async def discount(body: DiscountIn, screen: ScreenDep, reg: Till) -> JSONResponse:
    async def act() -> None:
        await reg.discount(
            body.line_id, _discount(body), cart_id=body.cart_id, manager=_manager(body.manager)
        )

    return await run(screen, act())


@router.post("/park")
async def park(body: OnCart, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, reg.park(cart_id=body.cart_id))


@router.post("/resume")
async def resume(body: Resume, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, reg.resume(body.parked_id, cart_id=body.cart_id))


@router.post("/sale/void")
async def void_sale(body: Approvable, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(
        screen,
        payments.void_current_sale(reg, cart_id=body.cart_id, manager=_manager(body.manager)),
    )


@router.post("/sale/new")
async def new_sale(screen: ScreenDep, reg: Till) -> JSONResponse:
    async def act() -> None:
        async with reg.command():
            reg.last_receipt = None

    return await run(screen, act())


@router.post("/pay/start")
async def pay_start(body: OnCart, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, payments.start_payment(reg, cart_id=body.cart_id))


@router.post("/pay/cancel")
async def pay_cancel(body: OnCart, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, payments.cancel_payment(reg, cart_id=body.cart_id))


@router.post("/pay/cash")
async def pay_cash(body: Cash, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, payments.pay_cash(reg, body.received_minor, cart_id=body.cart_id))


@router.post("/pay/card")
async def pay_card(body: Card, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, payments.pay_card(reg, body.amount_minor, cart_id=body.cart_id))


@router.post("/pay/complete")
async def pay_complete(body: OnCart, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, payments.complete(reg, cart_id=body.cart_id))


@router.post("/returns/lookup")
async def return_lookup(body: Receipt, screen: ScreenDep, reg: Till) -> JSONResponse:
    try:
        found = await returns_desk.find_sale(reg, body.receipt)
    except (CheckoutError, RegisterError) as err:
        return _refused(screen, error_code(err), err.cashier_message)
    return JSONResponse(
        {"sale": returnable_view(found, reg.config.currency), "state": screen.state()}
    )


@router.post("/returns")
async def refund(body: Refund, screen: ScreenDep, reg: Till) -> JSONResponse:
    async def act() -> None:
        quantities = {k: parse_quantity(v) for k, v in body.quantities.items()}
        await returns_desk.refund(reg, body.receipt, quantities)

    return await run(screen, act())


@router.post("/shift/open")
async def shift_open(body: Amount, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, shift_desk.open_new_shift(reg, body.amount_minor))


@router.post("/shift/cash")
async def shift_cash(body: CashMove, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(
        screen, shift_desk.move_cash(reg, body.direction, body.amount_minor, reason=body.reason)
    )


@router.post("/shift/x")
async def shift_x(screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, shift_desk.x_report(reg))


@router.post("/shift/close")
async def shift_close(body: Amount, screen: ScreenDep, reg: Till) -> JSONResponse:
    return await run(screen, shift_desk.close_shift(reg, body.amount_minor))
