"""A transfer between stores at the register: its API journals each half; on-hand follows."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from edge.stock.movements import STOCK_TRANSFER_RECEIVED, STOCK_TRANSFER_SENT
from tests.edge.kiosk.conftest import Rig, start_rig

MILK_ID, MILK14 = "I00001", "07610200000019"
YOGHURT = "7610201000025"
YOGHURT14 = "0" + YOGHURT


@pytest.fixture
async def till(tmp_path: Path) -> AsyncIterator[tuple[Rig, httpx.AsyncClient]]:
    rig = await start_rig(tmp_path)
    async with httpx.AsyncClient(base_url=rig.url, timeout=30) as client:
        signed = await client.post("/api/signin", json={"employee_id": "E01", "pin": "1234"})
        assert signed.status_code == 200, signed.text
        yield rig, client
    await rig.stack.aclose()


async def _bodies(rig: Rig) -> list[tuple[str, dict[str, object]]]:
    records = [json.loads(r.record) for r in await rig.ledger.read_records(1, 100)]
    return [(r["kind"], r["body"]) for r in records]


async def test_send_and_receive_are_journaled_and_move_on_hand(
    till: tuple[Rig, httpx.AsyncClient],
) -> None:
    rig, client = till
    sent = await client.post(
        "/api/stock/transfers/send",
        json={"to_store": "store-2", "lines": {MILK_ID: 4, YOGHURT: 2}},
    )
    assert sent.status_code == 200, sent.text
    transfer_id = sent.json()["transfer_id"]
    assert transfer_id.startswith("T-1-")
    received = await client.post(
        "/api/stock/transfers/receive",
        json={"transfer_id": "T-elsewhere", "from_store": "store-3", "lines": {YOGHURT14: 5}},
    )
    assert received.status_code == 200, received.text

    assert await _bodies(rig) == [
        (
            STOCK_TRANSFER_SENT,
            {
                "transfer_id": transfer_id,
                "to_store": "store-2",
                "lines": [{"gtin": MILK14, "quantity": 4}, {"gtin": YOGHURT14, "quantity": 2}],
                "by": "E01",
            },
        ),
        (
            STOCK_TRANSFER_RECEIVED,
            {
                "transfer_id": "T-elsewhere",
                "from_store": "store-3",
                "lines": [{"gtin": YOGHURT14, "quantity": 5}],
                "by": "E01",
            },
        ),
    ]
    on_hand = await client.get("/api/stock/on-hand")
    assert on_hand.json() == {MILK14: -4, YOGHURT14: 3}


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        pytest.param({}, "not_allowed", id="no-lines"),
        pytest.param({MILK_ID: 0}, "not_allowed", id="zero-units"),
        pytest.param({MILK_ID: -2}, "not_allowed", id="negative-units"),
        pytest.param({"I-nowhere": 1}, "unknown_item", id="unknown-item"),
    ],
)
async def test_a_wrong_transfer_is_refused_and_nothing_is_journaled(
    till: tuple[Rig, httpx.AsyncClient], lines: dict[str, int], code: str
) -> None:
    rig, client = till
    answer = await client.post(
        "/api/stock/transfers/send", json={"to_store": "store-2", "lines": lines}
    )
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == code
    assert await _bodies(rig) == []


async def test_signed_out_register_refuses_a_transfer(
    till: tuple[Rig, httpx.AsyncClient],
) -> None:
    rig, client = till
    assert (await client.post("/api/lock")).status_code == 200
    answer = await client.post(
        "/api/stock/transfers/receive", json={"transfer_id": "T-1", "lines": {MILK_ID: 1}}
    )
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "not_signed_in"
    assert await _bodies(rig) == []
