"""The loyalty section of the console's customer page: what ``_customer_loyalty.html`` shows.

The customer page (``control_plane.customers.pages``) adds this to its context; a customer with
no loyalty balance yet (no sale with their card) shows the section empty, not an error.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.loyalty import service
from control_plane.loyalty.service import CustomerBalanceNotFound
from control_plane.tenancy import TenantScope

#: Movements the page lists (newest first); the API pages the rest.
MOVEMENTS_SHOWN = 50


async def loyalty_section(
    engine: AsyncEngine, *, scope: TenantScope, customer_id: str
) -> dict[str, Any]:
    """``loyalty`` (the balance, or None) and ``loyalty_movements`` for the template."""
    try:
        balance = await service.balance(engine, scope=scope, customer_id=customer_id)
    except CustomerBalanceNotFound:
        return {"loyalty": None, "loyalty_movements": []}
    moved = await service.movements(
        engine, scope=scope, customer_id=customer_id, limit=MOVEMENTS_SHOWN
    )
    return {"loyalty": balance, "loyalty_movements": moved}
