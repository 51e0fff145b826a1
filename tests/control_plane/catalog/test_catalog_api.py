"""Catalog snapshot, changes and upserts against SQLite and PostgreSQL.

Registers read (their own assertion, the ``api`` fixture); the back office writes as an operator
with ``catalog:write`` (here the bootstrap platform admin's API token).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.control_plane.catalog.conftest import TENANT
from tests.harness.control_plane import bearer, bootstrap_admin

pytestmark = pytest.mark.services


def item(item_id: str, price_minor: Any = 250, **extra: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "name": f"Item {item_id}",
        "price_minor": price_minor,
        "tax_class": "B",
        "department": "Pantry",
        "gtins": [],
        **extra,
    }


@pytest.fixture
async def writer(api: httpx.AsyncClient, database_url: str) -> dict[str, str]:
    """An operator's credentials for the upserts, on the store behind ``api``."""
    del api  # its store is migrated and seeded first
    return bearer(await bootstrap_admin(database_url))


async def post(api: httpx.AsyncClient, writer: dict[str, str], **body: Any) -> httpx.Response:
    """An upsert as the operator (not as the register the client authenticates as)."""
    return await api.post(
        "/api/catalog/items", json={"tenant_id": TENANT, **body}, headers=writer, auth=None
    )


async def test_upserts_version_the_catalog_and_changes_carry_them(
    api: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    first = await post(api, writer, items=[item("A"), item("B", gtins=["7610200000019"])])
    assert first.json() == {"version": 1}
    snap = (await api.get("/api/catalog/snapshot", params={"tenant_id": TENANT})).json()
    assert snap["version"] == 1
    assert [(i["id"], i["version"]) for i in snap["items"]] == [("A", 1), ("B", 1)]

    assert (await post(api, writer, items=[item("A", 199)])).json() == {"version": 2}
    assert (await post(api, writer, deletes=["B"])).json() == {"version": 3}
    since1 = (
        await api.get("/api/catalog/changes", params={"tenant_id": TENANT, "since": 1})
    ).json()
    assert since1["base_version"] == 1
    assert since1["version"] == 3
    assert [(i["id"], i["price_minor"]) for i in since1["upserts"]] == [("A", 199)]
    assert since1["deletes"] == ["B"]
    nothing = await api.get("/api/catalog/changes", params={"tenant_id": TENANT, "since": 3})
    assert nothing.json() == {"base_version": 3, "version": 3, "upserts": [], "deletes": []}
    snap = (await api.get("/api/catalog/snapshot", params={"tenant_id": TENANT})).json()
    assert [i["id"] for i in snap["items"]] == ["A"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"items": [item("A", 2.5)]}, 422, id="float-price"),
        pytest.param({"items": [item("A", -1)]}, 422, id="negative-price"),
        pytest.param({"items": [item("A", sold_by="litre")]}, 422, id="unknown-sold-by"),
        pytest.param({"tenant_id": "t-nobody", "items": [item("A")]}, 404, id="unknown-tenant"),
    ],
)
async def test_bad_upserts_are_refused(
    api: httpx.AsyncClient, writer: dict[str, str], body: dict[str, Any], status: int
) -> None:
    answer = await post(api, writer, **body)
    assert answer.status_code == status
    snap = (await api.get("/api/catalog/snapshot", params={"tenant_id": TENANT})).json()
    assert snap == {"version": 0, "items": []}


async def test_a_register_ahead_of_the_cloud_is_told_to_reload(
    api: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    await post(api, writer, items=[item("A")])
    answer = await api.get("/api/catalog/changes", params={"tenant_id": TENANT, "since": 7})
    assert answer.status_code == 410
    unknown = await api.get("/api/catalog/snapshot", params={"tenant_id": "t-nobody"})
    assert unknown.status_code == 404
