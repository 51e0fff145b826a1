"""A tenant's loyalty programme: the ``loyalty`` section of its configuration, else the defaults.

Why the tenant's and not a store's: a customer's tier and balance are the tenant's, whichever
store they buy in, so the ledger ranks them by the tenant layer (over the platform layer). A
store may still override the section for its registers (how much its sales earn); the tiers the
cloud computes and the registers show stay the tenant's.
"""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.configuration.tables import config_settings
from protocols.loyalty import LoyaltyRules

log = logging.getLogger(__name__)
KEY = "loyalty"


async def programme_rules(conn: AsyncConnection, tenant_id: str) -> LoyaltyRules:
    """The tenant's loyalty rules (tenant layer, else platform layer, else the defaults)."""
    rows = (
        await conn.execute(
            select(config_settings.c.layer, config_settings.c.value).where(
                config_settings.c.key == KEY,
                or_(
                    config_settings.c.layer == "platform",
                    and_(
                        config_settings.c.layer == "tenant",
                        config_settings.c.target == tenant_id,
                    ),
                ),
            )
        )
    ).all()
    chosen = {row.layer: row.value for row in rows}
    raw = chosen.get("tenant", chosen.get("platform"))
    if raw is None:
        return LoyaltyRules()
    try:
        return LoyaltyRules.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        log.warning(
            "loyalty: tenant %s's loyalty section is invalid; using the defaults", tenant_id
        )
        return LoyaltyRules()
