"""A register that rings sales by itself, for the demo, benchmarks and fault tests.

It calls the same ledger API the kiosk does; only the cashier is simulated.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from edge.ledger import CommittedSale, Ledger, SaleDraft, SaleLine, Tender

#: (sku, description, unit price in minor units)
SHELF = (
    ("4006381333931", "Stabilo pen", 129),
    ("5000112637922", "Cola 0.5 l", 189),
    ("7622210449283", "Chocolate 100 g", 149),
    ("8710398503968", "Coffee beans 500 g", 899),
    ("4311501446291", "Whole milk 1 l", 109),
    ("2012345002500", "Apples (weighed)", 250),
    ("9780201379624", "Paperback", 1499),
)


@dataclass(frozen=True, kw_only=True)
class RingSettings:
    """How fast and how many; ``count`` None rings until cancelled."""

    rate: float = 1.0
    count: int | None = None
    seed: int | None = None


def random_sale(rng: random.Random, *, currency: str) -> SaleDraft:
    """A plausible basket paid in cash, card, or both."""
    lines = []
    for sku, description, price in rng.sample(SHELF, rng.randint(1, 4)):
        quantity = rng.randint(1, 3)
        lines.append(SaleLine(sku, description, Decimal(quantity), price, price * quantity))
    total = sum(line.amount_minor for line in lines)
    kind = rng.choice(("cash", "card", "split"))
    if kind == "cash":
        tenders: tuple[Tender, ...] = (Tender("cash", -(-total // 500) * 500),)
    elif kind == "card":
        tenders = (Tender("card", total, f"T{rng.randrange(10**8):08d}"),)
    else:
        cash = total // 2
        tenders = (
            Tender("cash", cash),
            Tender("card", total - cash, f"T{rng.randrange(10**8):08d}"),
        )
    return SaleDraft(
        sale_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        currency=currency,
        lines=tuple(lines),
        tenders=tenders,
    )


async def ring_sales(
    ledger: Ledger,
    settings: RingSettings,
    *,
    currency: str = "EUR",
    on_commit: Callable[[CommittedSale], None] | None = None,
) -> list[CommittedSale]:
    """Ring sales at ``rate`` per second (evenly spaced) and return what was committed.

    ``on_commit`` hears of each sale after its commit returned: the fault tests use it to know
    which sales the ledger promised to keep.
    """
    rng = random.Random(settings.seed)
    committed: list[CommittedSale] = []
    loop = asyncio.get_running_loop()
    interval = 1.0 / settings.rate if settings.rate > 0 else 0.0
    next_at = loop.time()
    while settings.count is None or len(committed) < settings.count:
        sale = await ledger.record_sale(random_sale(rng, currency=currency))
        committed.append(sale)
        if on_commit is not None:
            on_commit(sale)
        if interval:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
    return committed
