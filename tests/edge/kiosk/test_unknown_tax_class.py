"""The kiosk's HTTP API refuses an item of a tax class the store lacks with a 409 it shows.

Before the fix it answered 500 (``KeyError: unknown tax class``) and the screen showed nothing.
A real kiosk (uvicorn on a free port, real ledger and pos.db), no browser: the API is the contract.
"""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY

from edge.checkout.catalog import ChangeSet, Item
from tests.edge.kiosk.conftest import Rig

GIFT_WRAP = Item("I99001", "Gift wrap", 300, "Q", "Gifts", gtins=("07610200000095",), sku="G1")
WHAT_TO_DO = "add tax class Q to the store's tax table in the console"


def refusals(code: str) -> float:
    return REGISTRY.get_sample_value("storefleet_register_refusals_total", {"code": code}) or 0.0


async def test_adding_or_scanning_an_item_of_an_unknown_tax_class_answers_409(rig: Rig) -> None:
    version = rig.register.catalog.version
    rig.register.apply_catalog(ChangeSet(version, version + 1, upserts=(GIFT_WRAP,)))
    before = refusals("unknown_tax_class")
    async with httpx.AsyncClient(base_url=rig.url) as api:
        signed = await api.post("/api/signin", json={"employee_id": "E01", "pin": "1234"})
        assert signed.status_code == 200, signed.text
        shift = await api.post("/api/shift/open", json={"amount_minor": 10000})
        assert shift.status_code == 200, shift.text
        for path, body in (
            ("/api/items", {"item_id": "I99001"}),
            ("/api/scan", {"code": "7610200000095"}),
        ):
            answer = await api.post(path, json=body)
            assert answer.status_code == 409, (path, answer.text)
            error = answer.json()["error"]
            assert error["code"] == "unknown_tax_class"
            assert "Gift wrap" in error["message"]
            assert WHAT_TO_DO in error["message"]
            alert = answer.json()["state"]["register"]["alert"]
            assert alert["code"] == "unknown_tax_class"  # what the kiosk shows the cashier
        state = await api.get("/api/state")
        assert state.status_code == 200
        assert state.json()["register"]["cart"]["lines"] == []
        milk = await api.post("/api/scan", json={"code": "7610200000019"})
        assert milk.status_code == 200, milk.text  # the till goes on selling
    assert refusals("unknown_tax_class") - before == 2
