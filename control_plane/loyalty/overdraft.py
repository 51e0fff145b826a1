"""The ``loyalty_overdraft`` alert's condition: customers whose balance a redemption took below 0.

Why an alert and not a refusal: two stores offline may both redeem the points the register last
saw; both sales happened and stand. The ledger records the overdraft on the balance (which
device's redemption took it below zero) and the alert puts it in front of an operator, on that
device, until the balance is back at zero or above (a manual adjustment, or new earning).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.loyalty.tables import loyalty_balances

KIND = "loyalty_overdraft"
#: Customers named in one alert's detail (more are counted, not listed).
LISTED = 5


async def conditions(conn: AsyncConnection, devices: Mapping[str, Any]) -> dict[str, str]:
    """Device id → what an operator reads, for every device that overdrew a customer."""
    rows = (
        await conn.execute(
            select(
                loyalty_balances.c.customer_id,
                loyalty_balances.c.points,
                loyalty_balances.c.credit_minor,
                loyalty_balances.c.overdraft_device_id,
            )
            .where(loyalty_balances.c.overdrawn_at.is_not(None))
            .order_by(loyalty_balances.c.overdrawn_at)
        )
    ).all()
    found: dict[str, list[str]] = {}
    for row in rows:
        if row.overdraft_device_id not in devices:
            continue
        owed = []
        if row.points < 0:
            owed.append(f"{-row.points} points")
        if row.credit_minor < 0:
            owed.append(f"{-row.credit_minor} minor units of store credit")
        found.setdefault(row.overdraft_device_id, []).append(
            f"customer {row.customer_id} overdrawn by {' and '.join(owed)}"
        )
    return {
        device_id: "; ".join(lines[:LISTED])
        + (f"; and {len(lines) - LISTED} more" if len(lines) > LISTED else "")
        + " (redeemed offline beyond the balance; the sales stand: settle by an adjustment)"
        for device_id, lines in found.items()
    }
