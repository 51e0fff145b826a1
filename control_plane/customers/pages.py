"""Console pages of customers: the list with search, one customer with card, consent and sales.

Both pages need ``customers:read`` (operators and admins: viewers see no personal data). The
page renders the buttons that change something only when the policy lets this operator do it
(new customer, the contact details' edit form, consent: ``customers:write``; export, erase:
``customers:export`` / ``customers:erase``); they call the customers API with the session's CSRF
token, which refuses anyway. Without a master key the pages say so instead of failing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.customers import service
from control_plane.customers.errors import CustomersOff, SearchTooVague
from control_plane.customers.keyring import Keyring
from control_plane.customers.schemas import CustomerId
from control_plane.customers.settings import MASTER_KEY_VARIABLE
from control_plane.dependencies import get_engine
from control_plane.loyalty.section import loyalty_section
from control_plane.operators import audit
from control_plane.operators.audit import Actor
from control_plane.operators.gatekeeper import client_address
from control_plane.operators.policy import Action, CustomersPage, permits
from control_plane.operators.principal import Principal
from control_plane.operators.sessions import SESSION_COOKIE, csrf_token
from control_plane.tenancy import TenantScope
from protocols.currency import format_minor

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parents[1] / "console" / "templates")
templates.env.filters["money"] = format_minor
Engine = Annotated[AsyncEngine, Depends(get_engine)]
#: Sales shown on a customer's page (the export has them all).
SALES_SHOWN = 50


def _when(ms: int | None) -> str:
    if ms is None:
        return "–"
    return f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"


templates.env.filters["when"] = _when


def _context(request: Request, principal: Principal) -> dict[str, Any]:
    secret = request.cookies.get(SESSION_COOKIE)
    return {
        "principal": principal,
        "can": {
            "write": permits(principal, Action.CUSTOMERS_WRITE),
            "export": permits(principal, Action.CUSTOMERS_EXPORT),
            "erase": permits(principal, Action.CUSTOMERS_ERASE),
        },
        "csrf_token": csrf_token(secret) if secret and principal.via == "session" else "",
        "off": None,
    }


def _keyring(request: Request) -> Keyring | None:
    keyring: Keyring | None = getattr(request.app.state, "customer_keyring", None)
    return keyring


@router.get("/customers", response_class=HTMLResponse)
async def customers_page(
    request: Request, engine: Engine, principal: CustomersPage
) -> HTMLResponse:
    """Customers of the operator's tenant: the newest ones, and the search form."""
    context = _context(request, principal) | {"q": "", "customers": [], "problem": ""}
    keyring = _keyring(request)
    if keyring is None:
        context["off"] = CustomersOff().advice
    else:
        context["customers"] = await service.newest_customers(
            engine, keyring=keyring, tenant_id=principal.tenant_id
        )
    return templates.TemplateResponse(request, "customers.html", context)


@router.post("/customers", response_class=HTMLResponse)
async def customers_search_page(
    request: Request,
    engine: Engine,
    principal: CustomersPage,
    q: Annotated[str, Form(max_length=254)],
) -> HTMLResponse:
    """The customers a search finds. A form POST, so the text (a phone number, an e-mail) is
    in no URL, history or access log; the search is audited without it."""
    context = _context(request, principal) | {"q": q, "customers": [], "problem": ""}
    keyring = _keyring(request)
    if keyring is None:
        context["off"] = CustomersOff().advice
    elif principal.tenant_id is None:
        context["problem"] = "platform admins search a tenant's customers through the API"
    else:
        try:
            context["customers"] = await service.search_customers(
                engine,
                keyring=keyring,
                tenant_id=principal.tenant_id,
                text=q,
                actor=Actor.of(principal),
                client=client_address(request),
            )
        except SearchTooVague as err:
            context["problem"] = err.advice
    audit.changed_nothing()  # the search wrote its own entry; a vague one keeps no text
    return templates.TemplateResponse(request, "customers.html", context)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer_page(
    request: Request, engine: Engine, principal: CustomersPage, customer_id: CustomerId
) -> HTMLResponse:
    """One customer: profile, consent, card QR, sales, and (H14loyal) the loyalty section."""
    keyring = _keyring(request)
    if keyring is None:
        context = _context(request, principal) | {"off": f"set {MASTER_KEY_VARIABLE}"}
        return templates.TemplateResponse(request, "customers.html", context | {"customers": []})
    scope = TenantScope.of(principal)
    customer = await service.get_customer(
        engine, keyring=keyring, scope=scope, customer_id=customer_id
    )
    async with engine.connect() as conn:
        bought = await service.sales_of(
            conn, tenant_id=customer.tenant_id, customer_id=customer_id, limit=SALES_SHOWN
        )
    context = _context(request, principal) | {"customer": customer, "sales": bought}
    # === LOYALTY INCLUDE POINT (issue 14, H14loyal) ===
    # The template includes "_customer_loyalty.html" (if present) after the sales section with
    # this context: `customer` (CustomerOut), `principal`, `can`, `csrf_token`. Add what it needs
    # here, e.g. context["loyalty"] = await control_plane.loyalty.service.balance(...).
    context |= await loyalty_section(engine, scope=scope, customer_id=customer_id)
    return templates.TemplateResponse(request, "customer.html", context)
