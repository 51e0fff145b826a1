"""REST endpoints of customers: operators manage profiles; registers search their tenant's.

Operators (``customers:*`` actions, tenant-scoped): create, list and search, read one, correct
the contact details, change consent, the card's QR code, the GDPR export and erasure. Each
change writes its own audit entry holding the customer id, consent flags and the names of the
fields changed only — the request body (name, e-mail, phone) is never kept, which the policy's
generic change entry would do.

The register's search (``GET /api/customers/lookup``) is a device route: the register proves
itself with its signed assertion (``DeviceDep``), the tenant comes from its registry entry and
the answer holds ids and masked names only ("Anna K."), never an e-mail or phone number.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.customers import service
from control_plane.customers.card import card_png
from control_plane.customers.errors import (
    CustomerErased,
    CustomerKeysUnavailable,
    CustomerNotFound,
    CustomersOff,
    SearchTooVague,
    TenantRequired,
)
from control_plane.customers.keyring import Keyring
from control_plane.customers.schemas import (
    ConsentIn,
    CustomerExport,
    CustomerId,
    CustomerIn,
    CustomerList,
    CustomerOut,
    ProfileChange,
    RegisterSearch,
    SearchIn,
)
from control_plane.dependencies import get_engine
from control_plane.devices.device_auth import DEVICE_AUTH_REFUSALS, DeviceDep
from control_plane.devices.errors import TenantNotFound
from control_plane.operators.audit import Actor
from control_plane.operators.gatekeeper import client_address
from control_plane.operators.policy import (
    Action,
    CustomersErase,
    CustomersExport,
    CustomersRead,
    CustomersWrite,
    tenant_scope,
)
from control_plane.problems import problem_responses
from control_plane.tenancy import TenantScope
from protocols.limits import Identifier

router = APIRouter(prefix="/api/customers", tags=["customers"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]
_KEYS = (CustomersOff, CustomerKeysUnavailable)
_PNG: dict[int | str, dict[str, Any]] = {
    200: {"description": "the card's QR code", "content": {"image/png": {}}}
}


def get_keyring(request: Request) -> Keyring:
    """The master key's keyring, or :class:`CustomersOff` when none is configured."""
    keyring: Keyring | None = getattr(request.app.state, "customer_keyring", None)
    if keyring is None:
        raise CustomersOff
    return keyring


Keys = Annotated[Keyring, Depends(get_keyring)]


@router.post("/lookup", responses=problem_responses(SearchTooVague, *_KEYS, *DEVICE_AUTH_REFUSALS))
async def register_lookup(
    engine: Engine, keyring: Keys, device: DeviceDep, body: SearchIn
) -> RegisterSearch:
    """A register's search of its own tenant's customers: ids and masked names only.

    POST, not GET: the search text (a phone number, an e-mail) stays out of URLs and logs.
    """
    found = await service.search_for_register(
        engine, keyring=keyring, tenant_id=device.tenant_id, text=body.q
    )
    return RegisterSearch(customers=found)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(TenantRequired, TenantNotFound, *_KEYS),
)
async def create_customer(
    request: Request, engine: Engine, keyring: Keys, body: CustomerIn, principal: CustomersWrite
) -> CustomerOut:
    """A new customer of your tenant, with its card id and consent (when and how given)."""
    tenant_id = tenant_scope(principal, body.tenant_id, action=Action.CUSTOMERS_WRITE)
    if tenant_id is None:  # a platform admin who named no tenant
        raise TenantRequired
    return await service.create_customer(
        engine,
        keyring=keyring,
        tenant_id=tenant_id,
        body=body,
        actor=Actor.of(principal),
        client=client_address(request),
    )


@router.get("", responses=problem_responses(*_KEYS))
async def list_customers(
    engine: Engine,
    keyring: Keys,
    principal: CustomersRead,
    tenant_id: Identifier | None = None,
) -> CustomerList:
    """Your tenant's newest customers (search: ``POST /api/customers/search``)."""
    tenant = tenant_scope(principal, tenant_id, action=Action.CUSTOMERS_READ)
    found = await service.newest_customers(engine, keyring=keyring, tenant_id=tenant)
    return CustomerList(customers=found)


@router.post("/search", responses=problem_responses(SearchTooVague, TenantRequired, *_KEYS))
async def search_customers(
    request: Request, engine: Engine, keyring: Keys, body: SearchIn, principal: CustomersRead
) -> CustomerList:
    """Your tenant's customers matching ``q``: a name or its beginning, phone, e-mail or card.

    POST, not GET: the search text stays out of URLs and access logs; the search is audited
    without it.
    """
    tenant = tenant_scope(principal, body.tenant_id, action=Action.CUSTOMERS_READ)
    if tenant is None:  # each tenant's search terms are keyed with its own key
        raise TenantRequired
    found = await service.search_customers(
        engine,
        keyring=keyring,
        tenant_id=tenant,
        text=body.q,
        actor=Actor.of(principal),
        client=client_address(request),
    )
    return CustomerList(customers=found)


@router.get("/{customer_id}", responses=problem_responses(CustomerNotFound, *_KEYS))
async def get_customer(
    engine: Engine, keyring: Keys, customer_id: CustomerId, principal: CustomersRead
) -> CustomerOut:
    """One customer of your tenant (name, e-mail and phone are null once erased)."""
    return await service.get_customer(
        engine, keyring=keyring, scope=TenantScope.of(principal), customer_id=customer_id
    )


@router.patch(
    "/{customer_id}",
    responses=problem_responses(CustomerNotFound, CustomerErased, *_KEYS),
)
async def patch_customer(
    request: Request,
    engine: Engine,
    keyring: Keys,
    customer_id: CustomerId,
    body: ProfileChange,
    principal: CustomersWrite,
) -> CustomerOut:
    """Correct the name, e-mail or phone (only the fields sent; ``null`` removes an e-mail or
    a phone). Searches find the new details at once and the old ones no longer; audited with
    the names of the fields changed, not their values."""
    return await service.update_profile(
        engine,
        keyring=keyring,
        scope=TenantScope.of(principal),
        customer_id=customer_id,
        change=body,
        actor=Actor.of(principal),
        client=client_address(request),
    )


@router.put(
    "/{customer_id}/consent",
    responses=problem_responses(CustomerNotFound, CustomerErased, *_KEYS),
)
async def put_consent(
    request: Request,
    engine: Engine,
    keyring: Keys,
    customer_id: CustomerId,
    body: ConsentIn,
    principal: CustomersWrite,
) -> CustomerOut:
    """Record consent given or withdrawn (marketing, e-mailed receipts), now, and how."""
    return await service.change_consent(
        engine,
        keyring=keyring,
        scope=TenantScope.of(principal),
        customer_id=customer_id,
        consent=body,
        actor=Actor.of(principal),
        client=client_address(request),
    )


@router.get(
    "/{customer_id}/card.png",
    response_class=Response,
    responses=_PNG | problem_responses(CustomerNotFound, *_KEYS),
)
async def get_card(
    engine: Engine, keyring: Keys, customer_id: CustomerId, principal: CustomersRead
) -> Response:
    """The QR code of the customer's loyalty card (SFC1:<id>) as a PNG for printing."""
    found = await service.get_customer(
        engine, keyring=keyring, scope=TenantScope.of(principal), customer_id=customer_id
    )
    return Response(card_png(found.id), media_type="image/png")


@router.get(
    "/{customer_id}/export",
    responses=problem_responses(CustomerNotFound, CustomerErased, *_KEYS),
)
async def export_customer(
    request: Request,
    engine: Engine,
    keyring: Keys,
    customer_id: CustomerId,
    principal: CustomersExport,
) -> Response:
    """Everything stored about one customer as a JSON download (GDPR); audited."""
    exported: CustomerExport = await service.export_customer(
        engine,
        keyring=keyring,
        scope=TenantScope.of(principal),
        customer_id=customer_id,
        actor=Actor.of(principal),
        client=client_address(request),
    )
    return Response(
        exported.model_dump_json(by_alias=True, indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="customer-{customer_id}.json"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/{customer_id}/erase",
    responses=problem_responses(CustomerNotFound, CustomerErased, *_KEYS),
)
async def erase_customer(
    request: Request,
    engine: Engine,
    keyring: Keys,
    customer_id: CustomerId,
    principal: CustomersErase,
) -> CustomerOut:
    """Erase the customer's personal data for good (GDPR); their sales stay, under the id."""
    scope = TenantScope.of(principal)
    await service.erase_customer(
        engine,
        scope=scope,
        customer_id=customer_id,
        actor=Actor.of(principal),
        client=client_address(request),
    )
    return await service.get_customer(engine, keyring=keyring, scope=scope, customer_id=customer_id)
