"""Property: the cloud's on-hand is the sum of each store's movements since its last count, and a
transfer's in-transit stock is counted in exactly one place, on SQLite and PostgreSQL.

Hypothesis writes the journals of three stores (one register each) — sales and returns by item
id and by barcode, goods received, adjustments, counts, transfers between the stores received
with the quantity sent or a different one, or not yet — stores them as the ingest does, and
catches devices up in a generated order at generated moments (a receipt may be folded before its
sending half). The test sums the same operations itself, straight from the operations: per store
and GTIN the last count plus every movement after it, and per GTIN the units of transfers sent
and not received. Without counts the whole network is conserved: the stores' figures plus what
is in transit equal what came in and went out, plus each received transfer's difference.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, update

from control_plane.catalog.schemas import CatalogItem
from control_plane.catalog.service import upsert_items
from control_plane.db.engine import make_engine
from control_plane.devices import service as registry
from control_plane.devices.tables import devices
from control_plane.ingest.tables import journal
from control_plane.stock import projection, service
from control_plane.tenancy import TenantScope
from protocols.vocabulary import JournalKind

pytestmark = [pytest.mark.services]

K = JournalKind
STORES = ("s0", "s1", "s2")
#: (item id, the GTIN-14 the catalog maps it to, the EAN-13 a scan would carry)
ITEMS = (
    ("I1", "07610200000019", "7610200000019"),
    ("I2", "07610201000025", "7610201000025"),
    ("I3", "05000112637922", "5000112637922"),
)
T0 = 1_764_000_000_000
_tenants = itertools.count()


@dataclass(frozen=True)
class Op:
    kind: str
    store: int
    item: int = 0
    units: int = 1
    to: int = 0  # send: the other store
    ref: int = 0  # receive: which sent transfer; catch_up: unused
    by_barcode: bool = False
    received: int | None = None  # receive: units counted on arrival (None: as sent)


stores = st.integers(0, len(STORES) - 1)
items = st.integers(0, len(ITEMS) - 1)
ops = st.one_of(
    st.builds(Op, st.sampled_from(["sale", "return"]), stores, items, st.integers(1, 5),
              by_barcode=st.booleans()),
    st.builds(Op, st.just("received"), stores, items, st.integers(1, 20)),
    st.builds(Op, st.just("adjusted"), stores, items, st.integers(-5, 5).filter(bool)),
    st.builds(Op, st.just("count"), stores, items, st.integers(0, 30)),
    st.builds(Op, st.just("send"), stores, items, st.integers(1, 10), to=stores),
    st.builds(Op, st.just("receive"), stores, ref=st.integers(0, 20),
              received=st.one_of(st.none(), st.integers(1, 12))),
    st.builds(Op, st.just("catch_up"), stores),
)  # fmt: skip


@dataclass
class Expected:
    on_hand: dict[tuple[str, str], int]
    in_transit: Counter[str]
    journals: dict[str, list[tuple[str, dict[str, Any]]]]
    catch_ups: list[tuple[int, str, int]]  # (after op n, store, its journal length then)
    external: Counter[str]  # came in minus went out, per GTIN, with received differences
    counted: bool


def play(history: list[Op]) -> Expected:
    """The operations as journals, and the figures summed directly from them."""
    on_hand: dict[tuple[str, str], int] = {}
    journals: dict[str, list[tuple[str, dict[str, Any]]]] = {s: [] for s in STORES}
    sent: list[tuple[str, str, int, str]] = []  # (transfer id, gtin, units, from store)
    received: set[str] = set()
    external: Counter[str] = Counter()
    catch_ups: list[tuple[int, str, int]] = []
    counted = False

    def move(store: str, gtin: str, units: int) -> None:
        on_hand[store, gtin] = on_hand.get((store, gtin), 0) + units

    for n, op in enumerate(history):
        store = STORES[op.store]
        item, gtin, ean = ITEMS[op.item]
        log = journals[store]
        if op.kind in ("sale", "return"):
            code = ean if op.by_barcode else item
            key = "sku" if op.kind == "sale" else "item_id"
            kind = K.SALE_COMPLETED if op.kind == "sale" else K.SALE_RETURNED
            log.append((kind, {"lines": [{key: code, "quantity": str(op.units)}]}))
            sign = -1 if op.kind == "sale" else 1
            move(store, gtin, sign * op.units)
            external[gtin] += sign * op.units
        elif op.kind in ("received", "adjusted"):
            kind = K.STOCK_RECEIVED if op.kind == "received" else K.STOCK_ADJUSTED
            log.append((kind, {"lines": [{"gtin": gtin, "quantity": op.units}], "reason": "x"}))
            move(store, gtin, op.units)
            external[gtin] += op.units
        elif op.kind == "count":
            log.append((K.STOCK_COUNT_COMMITTED, {"lines": [{"gtin": gtin, "counted": op.units}]}))
            on_hand[store, gtin] = op.units
            counted = True
        elif op.kind == "send":
            transfer_id = f"T{n}"
            body = {"transfer_id": transfer_id, "to_store": STORES[op.to],
                    "lines": [{"gtin": gtin, "quantity": op.units}], "by": ""}  # fmt: skip
            log.append((K.STOCK_TRANSFER_SENT, body))
            move(store, gtin, -op.units)
            sent.append((transfer_id, gtin, op.units, store))
        elif op.kind == "receive":
            open_ones = [s for s in sent if s[0] not in received]
            if not open_ones:
                continue
            transfer_id, gtin, units, source = open_ones[op.ref % len(open_ones)]
            arrived = units if op.received is None else op.received
            body = {"transfer_id": transfer_id, "from_store": source,
                    "lines": [{"gtin": gtin, "quantity": arrived}], "by": ""}  # fmt: skip
            log.append((K.STOCK_TRANSFER_RECEIVED, body))
            move(store, gtin, arrived)
            received.add(transfer_id)
            external[gtin] += arrived - units
        else:
            catch_ups.append((n, store, len(log)))
    in_transit: Counter[str] = Counter()
    for transfer_id, gtin, units, _ in sent:
        if transfer_id not in received:
            in_transit[gtin] += units
    return Expected(on_hand, in_transit, journals, catch_ups, external, counted)


async def write_journals(engine: Any, tenant: str, expected: Expected) -> None:
    """Every store's journal as the ingest stores it; each device's hwm at 0 for now."""
    rows = []
    for store, log in expected.journals.items():
        for seq, (kind, body) in enumerate(log, start=1):
            rows.append(
                {"device_id": f"{tenant}-{store}", "seq": seq, "kind": str(kind),
                 "ts": T0 + seq * 1000, "prev_hash": "0" * 64, "hash": f"{seq:064x}",
                 "received_at": T0, "body": json.dumps(body)}
            )  # fmt: skip
    if rows:
        async with engine.begin() as conn:
            await conn.execute(insert(journal), rows)


async def set_hwm(engine: Any, device_id: str, hwm: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(devices).where(devices.c.id == device_id).values(hwm=hwm))


async def new_tenant(engine: Any) -> str:
    tenant = f"t{next(_tenants)}"
    await registry.create_tenant(engine, tenant_id=tenant, name=tenant)
    for store in STORES:
        store_id = f"{tenant}-{store}"
        await registry.create_store(engine, store_id=store_id, tenant_id=tenant, name=store)
        await registry.register_device(engine, device_id=store_id, store_id=store_id)
    catalog = [
        CatalogItem(id=item, name=item, price_minor=100, tax_class="A", gtins=[ean])
        for item, _, ean in ITEMS
    ]
    await upsert_items(engine, tenant_id=tenant, items=catalog)
    return tenant


def _in_tenant(tenant: str, expected: Expected) -> Expected:
    """The expected figures with the tenant's store ids and transfer ids."""
    on_hand = {(f"{tenant}-{s}", g): n for (s, g), n in expected.on_hand.items()}
    journals = {}
    for store, log in expected.journals.items():
        renamed = []
        for kind, written in log:
            body = dict(written)
            for field in ("to_store", "from_store"):
                if field in body:
                    body[field] = f"{tenant}-{body[field]}"
            renamed.append((kind, body))
        journals[store] = renamed
    return Expected(on_hand, expected.in_transit, journals, expected.catch_ups,
                    expected.external, expected.counted)  # fmt: skip


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=st.lists(ops, max_size=30))
def test_on_hand_is_the_sum_of_movements_and_transit_is_counted_once(
    database: str, history: list[Op]
) -> None:
    async def check() -> None:
        engine = make_engine(database)
        try:
            tenant = await new_tenant(engine)
            expected = _in_tenant(tenant, play(history))
            await write_journals(engine, tenant, expected)
            for _, store, upto in expected.catch_ups:  # part way, in the generated order
                await set_hwm(engine, f"{tenant}-{store}", upto)
                await projection.catch_up(engine, [f"{tenant}-{store}"], page=3)
            for store in reversed(STORES):  # the rest: receivers may come before senders
                await set_hwm(engine, f"{tenant}-{store}", len(expected.journals[store]))
            scope = TenantScope(tenant)
            levels = await service.on_hand(engine, scope=scope, limit=1000)
            got = {(lv.store_id, lv.gtin): lv.on_hand for lv in levels}
            want = {key: n for key, n in expected.on_hand.items()}
            assert {k: v for k, v in got.items() if v or k in want} == want
            transit = await service.in_transit(engine, scope=scope)
            assert transit == {g: n for g, n in expected.in_transit.items() if n}
            if not expected.counted:
                network: Counter[str] = Counter()
                for (_, gtin), n in got.items():
                    network[gtin] += n
                for gtin, n in transit.items():
                    network[gtin] += n
                assert {g: n for g, n in network.items() if n} == {
                    g: n for g, n in expected.external.items() if n
                }
        finally:
            await engine.dispose()

    asyncio.run(check())
