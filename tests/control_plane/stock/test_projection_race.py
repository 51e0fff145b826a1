"""Catch-ups racing on one register (the supervised loop, a page's read, a threshold set, all at
once) apply each record once, on SQLite as on PostgreSQL. SQLite ignores ``FOR UPDATE``: before
the projection took the database's write lock first, two catch-ups read the same mark and both
folded the seqs past it (a doubled figure), or both inserted the first mark (an IntegrityError:
a 500 on ``PUT /api/stock/thresholds`` in CI)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from control_plane.db.engine import make_engine
from control_plane.stock import projection
from control_plane.stock.tables import stock_marks, stock_on_hand
from tests.control_plane.stock.conftest import append, new_tenant
from tests.control_plane.stock.test_low_stock_and_reorder import MILK, NOW, received, sale

pytestmark = [pytest.mark.services]

SALES = 40


@pytest.mark.parametrize("marked", [False, True], ids=["first-mark", "mark-moves"])
def test_catch_ups_racing_on_one_register_fold_each_record_once(
    database: str, marked: bool
) -> None:
    async def check() -> None:
        engine = make_engine(database)
        try:
            tenant = await new_tenant(engine, ["main"])
            store = f"{tenant}-main"
            seq = await append(engine, store, [received(100)], ts=NOW)
            if marked:  # the mark exists: the race is on moving it
                await projection.catch_up(engine, [store])
            await append(engine, store, [sale(1)] * SALES, ts=NOW, first_seq=seq + 1)
            await asyncio.gather(
                *(projection.catch_up(engine, [store], page=page) for page in (1, 2, 3, 5, 7, 50)),
                projection.catch_up_devices_behind(engine),
            )
            async with engine.connect() as conn:
                figure = (
                    await conn.execute(
                        select(stock_on_hand.c.on_hand).where(
                            stock_on_hand.c.store_id == store, stock_on_hand.c.gtin == MILK
                        )
                    )
                ).scalar_one()
                mark = (
                    await conn.execute(
                        select(stock_marks.c.upto_seq).where(stock_marks.c.device_id == store)
                    )
                ).scalar_one()
            assert (figure, mark) == (100 - SALES, 1 + SALES)
        finally:
            await engine.dispose()

    asyncio.run(check())
