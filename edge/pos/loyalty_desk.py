"""The register's loyalty state: the attached customer, the balances it last saw, their source.

Its own module (no import of the register): the register holds one :class:`LoyaltyDesk`, the
payment code reads the attached customer from it, and :mod:`edge.pos.customers` drives it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from typing import Protocol

from edge.checkout.loyalty import KnownBalance, first_seen
from edge.pos.errors import NotAllowed
from protocols.customer_card import InvalidCustomerCard, parse_customer_card
from protocols.loyalty import LoyaltyRules

log = logging.getLogger(__name__)

#: How long the register waits for the cloud's balance before using the one it last saw.
LOOKUP_TIMEOUT_S = 2.0


def read_card(text: str) -> str:
    """The customer id on a scanned card or QR; a damaged one is a message for the cashier."""
    try:
        return parse_customer_card(text)
    except InvalidCustomerCard as err:
        raise NotAllowed(f"Loyalty card not read: {err.reason}.") from err


class CloudUnreachable(Exception):  # noqa: N818 - named for what happened
    """The balance could not be fetched (offline, refused, timed out)."""


class BalanceSource(Protocol):
    """Where fresh balances come from (the cloud's device route); one call, one customer."""

    async def fetch(self, customer_id: str) -> KnownBalance | None:
        """The customer's balance (None: the cloud has none yet); :class:`CloudUnreachable`."""
        ...


@dataclass
class LoyaltyDesk:
    """The register's loyalty state: the attached customer and the balances it last saw."""

    source: BalanceSource | None = None
    attached: KnownBalance | None = None
    cache: dict[str, KnownBalance] = field(default_factory=dict)
    online: bool = False

    def remember(self, balance: KnownBalance) -> None:
        """Keep ``balance`` for its customer (and show it if they are attached)."""
        self.cache[balance.customer_id] = balance
        if self.attached is not None and self.attached.customer_id == balance.customer_id:
            self.attached = balance

    async def attach(self, customer_id: str, rules: LoyaltyRules) -> KnownBalance:
        """Attach ``customer_id`` with the freshest balance there is (the cloud's, else cached)."""
        known = self.cache.get(customer_id) or first_seen(customer_id, rules)
        if self.source is not None:
            try:
                async with asyncio.timeout(LOOKUP_TIMEOUT_S):
                    fetched = await self.source.fetch(customer_id)
                self.online = True
                known = fetched if fetched is not None else replace(known, fresh=True)
            except (CloudUnreachable, TimeoutError):
                self.online = False
                log.info("loyalty: the cloud is unreachable; %s redeems offline", customer_id)
        self.cache[customer_id] = known
        self.attached = known
        return known
