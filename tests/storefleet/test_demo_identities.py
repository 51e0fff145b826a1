"""The demo's registers sign their catalog calls with identities the demo's CA issued them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from control_plane.catalog.schemas import CatalogItem
from control_plane.demo import demo_control_plane, device_id_for, seed
from edge.enrolment.device_auth import FIXED_IDENTITY_SUBDIR, device_auth_at
from storefleet.demo_identities import issue_demo_identity
from tests.harness.services import Mosquitto, free_port

pytestmark = pytest.mark.services

ITEM = CatalogItem(id="demo-milk", name="Milk", price_minor=175, tax_class="B")


@pytest.fixture
async def demo_cloud(tmp_path: Path, mosquitto: Mosquitto) -> AsyncIterator[tuple[FastAPI, str]]:
    """The demo's control plane, served and seeded with two stores and a one-item catalog."""
    port = free_port()
    app, _ = demo_control_plane(
        data_dir=tmp_path, host="127.0.0.1", port=port, broker_url=mosquitto.url, database_url=None
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve(), name="demo-control-plane")
    async with asyncio.timeout(20):
        while not server.started:
            assert not task.done(), "the demo control plane exited at start"
            await asyncio.sleep(0.02)
    await seed(app.state.engine, stores=2, register_name="Till 1", items=[ITEM])
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_a_demo_register_reads_its_catalog_with_its_issued_identity(
    demo_cloud: tuple[FastAPI, str], tmp_path: Path
) -> None:
    app, url = demo_cloud
    register_dir = tmp_path / device_id_for(1)

    issued = await issue_demo_identity(app, device_id=device_id_for(1), register_dir=register_dir)
    auth = device_auth_at(register_dir / FIXED_IDENTITY_SUBDIR)
    assert auth is not None
    async with httpx.AsyncClient(base_url=url, auth=auth) as register:
        snapshot = await register.get("/api/catalog/snapshot")

    assert issued == register_dir / FIXED_IDENTITY_SUBDIR
    assert auth.device_id == device_id_for(1)
    assert [item["id"] for item in snapshot.json()["items"]] == [ITEM.id]


async def test_a_restarted_demo_issues_again_and_the_kept_key_still_signs(
    demo_cloud: tuple[FastAPI, str], tmp_path: Path
) -> None:
    app, url = demo_cloud
    register_dir = tmp_path / device_id_for(2)
    await issue_demo_identity(app, device_id=device_id_for(2), register_dir=register_dir)
    auth = device_auth_at(register_dir / FIXED_IDENTITY_SUBDIR)
    assert auth is not None
    key_before = auth.identity.key_sha256()
    await asyncio.sleep(1.1)  # certificates carry whole seconds: the new one is newer

    await issue_demo_identity(app, device_id=device_id_for(2), register_dir=register_dir)
    async with httpx.AsyncClient(base_url=url, auth=auth) as register:
        snapshot = await register.get("/api/catalog/snapshot")

    assert auth.identity.key_sha256() == key_before
    assert snapshot.status_code == 200, snapshot.text


def test_a_register_without_an_issued_identity_signs_nothing(tmp_path: Path) -> None:
    assert device_auth_at(tmp_path / FIXED_IDENTITY_SUBDIR) is None
