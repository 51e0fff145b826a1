"""Journal records shaped as the register writes them, stored as the ingest stores them.

For tests and the benchmark that need many sales fast: bodies carry the keys of the checkout's
``Sale``, ``SaleReturn``, ``SaleVoided`` and ``CashMoved`` records (the reconciliation test
proves the reports against the real register's); hashes are not chained (reports do not read
them). ``Seeder`` keeps each device's next seq, so several calls append.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import devices
from control_plane.ingest.tables import journal
from control_plane.sales.tables import sales

ITEMS = (  # item, name, department, price, tax rate
    ("I00001", "Whole milk 1 l", "dairy", 175, "0.026"),
    ("I00002", "Coffee beans 500 g", "grocery", 1290, "0.026"),
    ("I00003", "USB-C cable 1 m", "electronics", 1490, "0.081"),
    ("I00004", "Chocolate", "grocery", 199, "0.026"),
)


def _tax(gross: int, rate: str) -> int:
    """Tax inside a tax-inclusive amount, rounded half up, in minor units (no float)."""
    permille = int(Decimal(rate) * 1000)
    return (2 * gross * permille + 1000 + permille) // (2 * (1000 + permille))


def sale_body(
    sale_id: str, *, receipt: int, cashier: str, shift: str, rng: random.Random, at: str
) -> dict[str, Any]:
    """A ``sale.completed`` body: the ledger's summary and the checkout's full sale."""
    lines, summary, rows = [], [], {}
    for line_id in range(1, rng.randint(1, 4) + 1):
        item, name, department, price, rate = rng.choice(ITEMS)
        quantity = rng.randint(1, 3)
        gross = price * quantity
        discount = gross // 10 if rng.random() < 0.1 else 0
        total = gross - discount
        tax = _tax(total, rate)
        lines.append(
            {
                "line_id": line_id, "item_id": item, "name": name, "department": department,
                "tax_class": "A", "tax_rate": rate, "sold_by": "unit", "quantity": str(quantity),
                "unit_price_minor": price, "catalog_price_minor": price, "gross_minor": gross,
                "discount_minor": discount, "amount_minor": total, "tax_minor": tax,
                "total_minor": total, "approved_by": None,
            }
        )  # fmt: skip
        summary.append(
            {"sku": item, "description": name, "quantity": str(quantity),
             "unit_price_minor": price, "amount_minor": total}
        )  # fmt: skip
        net, tx, gr = rows.get(rate, (0, 0, 0))
        rows[rate] = (net + total - tax, tx + tax, gr + total)
    total = sum(line["total_minor"] for line in lines)
    kind = rng.choice(("cash", "card", "card"))
    tenders = [{"kind": kind, "amount_minor": total, "received_minor": total, "change_minor": 0,
                "terminal_reference": None, "last4": None, "scheme": None}]  # fmt: skip
    checkout = {
        "kind": "sale.completed", "v": 1, "sale_id": sale_id, "idempotency_key": sale_id,
        "register_id": "1", "receipt_number": receipt, "shift_id": shift, "cashier_id": cashier,
        "completed_at": at, "currency": "EUR", "exponent": 2, "pricing": "inclusive",
        "lines": lines, "voided_lines": 0, "subtotal_minor": total,
        "line_discount_minor": sum(line["discount_minor"] for line in lines),
        "basket_discount_minor": 0, "tax_minor": sum(r[1] for r in rows.values()),
        "total_minor": total, "rounding_minor": 0, "change_minor": 0,
        "tax_rows": [
            {"rate": rate, "codes": ["A"], "net_minor": n, "tax_minor": t, "gross_minor": g}
            for rate, (n, t, g) in sorted(rows.items())
        ],
        "tenders": tenders, "basket_approved_by": None,
    }  # fmt: skip
    return {
        "sale_id": sale_id, "register_id": "1", "receipt_no": receipt, "currency": "EUR",
        "total_minor": total, "tendered_minor": total, "change_minor": 0, "lines": summary,
        "tenders": [{"kind": kind, "amount_minor": total, "reference": None}],
        "checkout": checkout,
    }  # fmt: skip


def void_body(sale_id: str, *, cashier: str, shift: str, at: str) -> dict[str, Any]:
    return {
        "kind": "sale.voided", "v": 1, "sale_id": sale_id, "register_id": "1",
        "shift_id": shift, "cashier_id": cashier, "voided_at": at, "line_count": 1,
        "total_minor": 175, "approved_by": "M01",
    }  # fmt: skip


@dataclass
class Seeder:
    """Appends records to devices' journals in the cloud store."""

    engine: AsyncEngine
    tenant_id: str
    seqs: dict[str, int] = field(default_factory=dict)

    async def sales(
        self,
        *,
        device_id: str,
        store_id: str,
        start_ms: int,
        count: int,
        every_ms: int,
        seed: int = 1,
        voids_every: int = 0,
        chunk: int = 5000,
    ) -> int:
        """``count`` sales from ``start_ms``, one every ``every_ms``; returns their net total."""
        rng = random.Random(seed)
        seq = self.seqs.get(device_id, 0)
        net = 0
        records: list[dict[str, Any]] = []
        sale_rows: list[dict[str, Any]] = []
        for n in range(count):
            ts = start_ms + n * every_ms
            seq += 1
            sale_id = f"{device_id}-s{seq}"
            body = sale_body(
                sale_id, receipt=seq, cashier=f"E0{1 + n % 3}", shift="sh1", rng=rng, at=""
            )
            net += body["total_minor"]
            records.append(_record(device_id, seq, "sale.completed", ts, body))
            sale_rows.append(
                {"device_id": device_id, "seq": seq, "sale_id": sale_id,
                 "tenant_id": self.tenant_id, "store_id": store_id, "receipt_no": seq,
                 "currency": "EUR", "total_minor": body["total_minor"], "ts": ts}
            )  # fmt: skip
            if voids_every and n % voids_every == 0:
                seq += 1
                void = void_body(f"{device_id}-v{seq}", cashier="E01", shift="sh1", at="")
                records.append(_record(device_id, seq, "sale.voided", ts + 1, void))
            if len(records) >= chunk:
                await self._write(records, sale_rows)
                records, sale_rows = [], []
        await self._write(records, sale_rows)
        self.seqs[device_id] = seq
        async with self.engine.begin() as conn:
            await conn.execute(update(devices).where(devices.c.id == device_id).values(hwm=seq))
        return net

    async def record(self, *, device_id: str, kind: str, ts: int, body: dict[str, Any]) -> int:
        """Append one record of any kind (its body as given); returns its seq."""
        seq = self.seqs.get(device_id, 0) + 1
        await self._write([_record(device_id, seq, kind, ts, body)], [])
        self.seqs[device_id] = seq
        async with self.engine.begin() as conn:
            await conn.execute(update(devices).where(devices.c.id == device_id).values(hwm=seq))
        return seq

    async def _write(self, records: list[dict[str, Any]], sale_rows: list[dict[str, Any]]) -> None:
        if not records:
            return
        async with self.engine.begin() as conn:
            await conn.execute(insert(journal), records)
            if sale_rows:
                await conn.execute(insert(sales), sale_rows)


def _record(device_id: str, seq: int, kind: str, ts: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "device_id": device_id, "seq": seq, "kind": kind, "ts": ts, "prev_hash": "0" * 64,
        "hash": f"{seq:064x}", "body": json.dumps(body, sort_keys=True, separators=(",", ":")),
        "received_at": ts,
    }  # fmt: skip
