"""The register's loyalty state: the attached customer, the balances it last saw, their source.

Its own module (no import of the register): the register holds one :class:`LoyaltyDesk`, the
payment code reads the attached customer from it, and :mod:`edge.pos.customers` drives it.
Every balance it learns or moves is also written to the register's own SQLite file (a
:class:`BalanceStore`, ``pos.db``) with the movements the cloud may not have yet, so a register
restarted without the network still redeems against the balance it last saw.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
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


class CustomerFinder(Protocol):
    """Where the online search goes (the cloud's device route); raises NotAllowed offline."""

    async def search(self, text: str) -> list[tuple[str, str]]:
        """Matching customers as (pseudonymous id, masked name)."""
        ...


class BalanceStore(Protocol):
    """Where the balances last seen are kept across restarts (``pos.db``)."""

    async def loyalty_balance(self, customer_id: str) -> str | None:
        """The stored JSON of ``customer_id``, or None."""
        ...

    async def save_loyalty_balance(self, customer_id: str, balance: str) -> None:
        """Keep the JSON of ``customer_id``."""
        ...


@dataclass(frozen=True, slots=True)
class Pending:
    """A movement this register journaled at ``seq`` that the cloud may not have booked yet."""

    seq: int
    points: int
    lifetime_points: int
    credit_minor: int


@dataclass
class LoyaltyDesk:
    """The register's loyalty state: the attached customer and the balances it last saw.

    ``pending`` keeps, per customer, this register's own movements the cloud may not have: a
    balance fetched from the cloud holds this register's journal up to the seq it names with it
    (read in the same statement), so the movements after it are added and the others dropped.
    """

    source: BalanceSource | None = None
    finder: CustomerFinder | None = None
    store: BalanceStore | None = None
    attached: KnownBalance | None = None
    cache: dict[str, KnownBalance] = field(default_factory=dict)
    pending: dict[str, list[Pending]] = field(default_factory=dict)
    online: bool = False

    def remember(self, balance: KnownBalance) -> None:
        """Keep ``balance`` for its customer (and show it if they are attached)."""
        self.cache[balance.customer_id] = balance
        if self.attached is not None and self.attached.customer_id == balance.customer_id:
            self.attached = balance

    async def booked(self, seq: int, before: KnownBalance, after: KnownBalance) -> None:
        """A sale or return journaled at ``seq`` moved ``before`` to ``after``."""
        self.pending.setdefault(after.customer_id, []).append(
            Pending(
                seq,
                after.points - before.points,
                after.lifetime_points - before.lifetime_points,
                after.store_credit_minor - before.store_credit_minor,
            )
        )
        self.remember(after)
        await self._save(after.customer_id)

    async def _save(self, customer_id: str) -> None:
        known = self.cache.get(customer_id)
        if self.store is None or known is None:
            return
        text = json.dumps(
            {
                "balance": dataclasses.asdict(replace(known, fresh=False)),
                "pending": [dataclasses.astuple(p) for p in self.pending.get(customer_id, [])],
            }
        )
        await self.store.save_loyalty_balance(customer_id, text)

    async def _known(self, customer_id: str, rules: LoyaltyRules) -> KnownBalance:
        """The balance last seen: in memory, else as stored before a restart, else none yet."""
        known = self.cache.get(customer_id)
        if known is None and self.store is not None:
            text = await self.store.loyalty_balance(customer_id)
            if text is not None:
                stored = json.loads(text)
                known = KnownBalance(**stored["balance"])
                self.pending[customer_id] = [Pending(*p) for p in stored["pending"]]
                self.cache[customer_id] = known
        return known or first_seen(customer_id, rules)

    def _with_pending(self, fetched: KnownBalance, acked_seq: int) -> KnownBalance:
        # the cloud says up to which seq of ours its answer holds; else the ack is the floor
        holds = max(acked_seq, fetched.cloud_seq)
        left = [p for p in self.pending.get(fetched.customer_id, []) if p.seq > holds]
        self.pending[fetched.customer_id] = left
        return replace(
            fetched,
            points=fetched.points + sum(p.points for p in left),
            lifetime_points=fetched.lifetime_points + sum(p.lifetime_points for p in left),
            store_credit_minor=fetched.store_credit_minor + sum(p.credit_minor for p in left),
        )

    async def attach(
        self, customer_id: str, rules: LoyaltyRules, *, acked_seq: int = 0
    ) -> KnownBalance:
        """Attach ``customer_id`` with the freshest balance there is (the cloud's, else cached).

        ``acked_seq``: the register's replication ack, below which the cloud has its movements.
        """
        known = await self._known(customer_id, rules)
        if self.source is not None:
            try:
                async with asyncio.timeout(LOOKUP_TIMEOUT_S):
                    fetched = await self.source.fetch(customer_id)
                self.online = True
                base = fetched or replace(first_seen(customer_id, rules), fresh=True)
                known = self._with_pending(base, acked_seq)
            except (CloudUnreachable, TimeoutError):
                self.online = False
                log.info("loyalty: the cloud is unreachable; %s redeems offline", customer_id)
        self.cache[customer_id] = known
        self.attached = known
        await self._save(customer_id)
        return known

    async def credit_issued(
        self,
        customer_id: str,
        credit_minor: int,
        *,
        seq: int,
        rules: LoyaltyRules,
        points_reversed: int = 0,
    ) -> None:
        """A return here issued store credit and took back points at ``seq``: the next sale sees it.

        Points taken back were never really earned: they lower the lifetime points too.
        """
        known = await self._known(customer_id, rules)
        after = replace(
            known,
            store_credit_minor=known.store_credit_minor + credit_minor,
            points=known.points - points_reversed,
            lifetime_points=known.lifetime_points - points_reversed,
        )
        await self.booked(seq, known, after)
