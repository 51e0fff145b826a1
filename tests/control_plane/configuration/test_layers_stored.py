"""Layers on the real store (SQLite and PostgreSQL): precedence with delete fallback and
provenance, versions that move only when a document changes, groups by tag and priority, an
invalid value refused naming the key with nothing stored, another tenant's layer not found."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration import service
from control_plane.configuration.effective import device_configuration
from control_plane.configuration.errors import InvalidConfiguration, SettingNotFound, UnknownKey
from control_plane.configuration.layers import Layer
from control_plane.configuration.tables import config_effective, config_settings
from control_plane.devices.errors import StoreNotFound, TenantNotFound
from control_plane.operators.tables import audit_log
from control_plane.tenancy import TenantScope
from tests.control_plane.configuration.config_harness import ANA, World, fresh_world, migrated
from tests.harness.services import create_pg_database, drop_pg_database

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """One migrated store per back end for the module; each test seeds tenants of its own."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('config') / 'cloud.db'}"
        async with migrated(url) as engine:
            yield engine
        return
    url = await create_pg_database()
    try:
        async with migrated(url) as engine:
            yield engine
    finally:
        await drop_pg_database(url)


@pytest_asyncio.fixture(loop_scope="module")
async def w(store: AsyncEngine) -> World:
    """Tenants of this test alone (it changes them)."""
    return await fresh_world(store)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def unchanged(store: AsyncEngine) -> World:
    """Tenants the refusal tests share: a refused change leaves nothing behind."""
    return await fresh_world(store)


async def _key(w: World, device_id: str, key: str) -> tuple[Any, str, str]:
    view = await device_configuration(w.engine, device_id=device_id)
    found = next(k for k in view.keys if k.key == key)
    return found.value, found.provenance.layer.value, found.provenance.target


async def _versions(w: World) -> dict[str, int]:
    async with w.engine.connect() as conn:
        rows = await conn.execute(
            select(config_effective.c.device_id, config_effective.c.version).where(
                config_effective.c.tenant_id.in_([w.own, w.foreign])
            )
        )
        return {row.device_id: row.version for row in rows}


async def _set(w: World, layer: Layer, target: str, key: str, value: Any) -> service.Change:
    return await service.set_setting(
        w.engine, actor=ANA, layer=layer, target=target, key=key, value=value
    )


async def _delete(w: World, layer: Layer, target: str, key: str) -> service.Change:
    return await service.delete_setting(w.engine, actor=ANA, layer=layer, target=target, key=key)


async def test_every_seeded_register_has_a_complete_document(w: World) -> None:
    versions = await _versions(w)
    assert set(versions) == {w.r1, w.r2, w.other_r1, f"{w.own}-02-r2", w.foreign_r1}
    assert all(version == 1 for version in versions.values())
    assert await _key(w, w.r1, "log_level") == ("INFO", "platform", "")
    assert await _key(w, w.r1, "currency") == (
        {"code": "CHF", "exponent": 2, "cash_increment_minor": 5},
        "tenant",
        w.own,
    )


async def test_higher_layers_win_and_deleting_falls_back(w: World) -> None:
    await _set(w, Layer.TENANT, w.own, "log_level", "WARNING")
    await _set(w, Layer.STORE, w.store1, "log_level", "DEBUG")
    await _set(w, Layer.REGISTER, w.r1, "log_level", "ERROR")
    assert await _key(w, w.r1, "log_level") == ("ERROR", "register", w.r1)
    assert await _key(w, w.r2, "log_level") == ("DEBUG", "store", w.store1)
    assert await _key(w, w.other_r1, "log_level") == ("WARNING", "tenant", w.own)
    assert await _key(w, w.foreign_r1, "log_level") == ("INFO", "platform", "")

    await _delete(w, Layer.REGISTER, w.r1, "log_level")
    assert await _key(w, w.r1, "log_level") == ("DEBUG", "store", w.store1)
    await _delete(w, Layer.STORE, w.store1, "log_level")
    assert await _key(w, w.r1, "log_level") == ("WARNING", "tenant", w.own)
    await _delete(w, Layer.TENANT, w.own, "log_level")
    assert await _key(w, w.r1, "log_level") == ("INFO", "platform", "")


async def test_provenance_names_author_time_and_audit_entry(w: World) -> None:
    change = await service.set_setting(
        w.engine,
        actor=ANA,
        layer=Layer.STORE,
        target=w.store1,
        key="kiosk",
        value={"language": "de"},
        now=1_900_000_000_000,
    )
    view = await device_configuration(w.engine, device_id=w.r1)
    kiosk = next(k for k in view.keys if k.key == "kiosk")
    assert kiosk.provenance.set_by == ANA.actor
    assert kiosk.provenance.set_at == 1_900_000_000_000
    assert kiosk.provenance.audit_id == change.audit_id
    async with w.engine.connect() as conn:
        entry = (
            await conn.execute(select(audit_log).where(audit_log.c.id == change.audit_id))
        ).one()
    assert entry.target == f"store/{w.store1}/kiosk"
    assert json.loads(entry.after) == {"value": {"language": "de"}}


async def test_versions_move_only_when_a_document_changes(w: World) -> None:
    before = await _versions(w)
    change = await _set(w, Layer.STORE, w.store1, "log_level", "DEBUG")
    assert sorted(change.devices) == [w.r1, w.r2]
    after = await _versions(w)
    assert after[w.r1] == before[w.r1] + 1
    assert after[w.other_r1] == before[w.other_r1]
    # the same value again, and values every store-1 register already has: no new version
    assert (await _set(w, Layer.STORE, w.store1, "log_level", "DEBUG")).devices == []
    assert (await _set(w, Layer.REGISTER, w.r1, "log_level", "DEBUG")).devices == []
    change = await _set(w, Layer.TENANT, w.own, "log_level", "ERROR")
    assert sorted(change.devices) == [w.other_r1, f"{w.own}-02-r2"]
    assert (await _versions(w))[w.r1] == after[w.r1]


async def test_groups_by_tag_priority_then_id(w: World) -> None:
    city, big = f"{w.own}-city", f"{w.own}-big"
    await service.put_group(
        w.engine, actor=ANA, group_id=city, tenant_id=w.own, tag="city", priority=0
    )
    await service.put_group(
        w.engine, actor=ANA, group_id=big, tenant_id=w.own, tag="big", priority=0
    )
    await _set(w, Layer.GROUP, city, "log_level", "DEBUG")
    await _set(w, Layer.GROUP, big, "log_level", "WARNING")
    assert await _key(w, w.r1, "log_level") == ("INFO", "platform", "")
    await service.set_store_tags(w.engine, actor=ANA, store_id=w.store1, tags=["city", "big"])
    # equal priority: the group id sorting first wins
    assert await _key(w, w.r1, "log_level") == ("WARNING", "group", big)
    await service.put_group(
        w.engine, actor=ANA, group_id=city, tenant_id=w.own, tag="city", priority=5
    )
    assert await _key(w, w.r1, "log_level") == ("DEBUG", "group", city)
    assert await _key(w, w.other_r1, "log_level") == ("INFO", "platform", "")
    await _set(w, Layer.STORE, w.store1, "log_level", "ERROR")
    assert await _key(w, w.r1, "log_level") == ("ERROR", "store", w.store1)


async def _snapshot(w: World) -> tuple[list[Any], list[Any], int]:
    tenants = [w.own, w.foreign]
    async with w.engine.connect() as conn:
        settings = (
            await conn.execute(
                select(config_settings)
                .where(config_settings.c.tenant_id.in_(tenants))
                .order_by(config_settings.c.layer, config_settings.c.target, config_settings.c.key)
            )
        ).all()
        effective = (
            await conn.execute(
                select(config_effective)
                .where(config_effective.c.tenant_id.in_(tenants))
                .order_by(config_effective.c.device_id)
            )
        ).all()
        audit_ok = await conn.scalar(
            select(func.count())
            .select_from(audit_log)
            .where(audit_log.c.outcome == "ok", audit_log.c.tenant_id.in_(tenants))
        )
    return list(settings), list(effective), int(audit_ok or 0)


@pytest.mark.parametrize(
    ("layer", "target", "key", "value", "path"),
    [
        pytest.param(
            Layer.STORE, "store1", "printer", {"connector": "network"}, "printer", id="no-host"
        ),
        pytest.param(
            Layer.TENANT,
            "own",
            "kiosk",
            {"language": "de", "idle_lock_seconds": 1},
            "kiosk.idle_lock_seconds",
            id="kiosk-lock-too-short",
        ),
        pytest.param(Layer.REGISTER, "r1", "log_level", "LOUD", "log_level", id="no-such-level"),
        pytest.param(
            Layer.STORE, "store1", "receipt", {"extra": 1}, "receipt.extra", id="unknown-field"
        ),
        pytest.param(
            Layer.TENANT,
            "own",
            "currency",
            {"code": "CHF", "exponent": 2.0},
            "currency.exponent",
            id="float-refused",
        ),
    ],
)
async def test_an_invalid_value_is_refused_naming_the_key_and_nothing_changes(
    unchanged: World, layer: Layer, target: str, key: str, value: Any, path: str
) -> None:
    w = unchanged
    before = await _snapshot(w)
    with pytest.raises(InvalidConfiguration) as refused:
        await _set(w, layer, getattr(w, target), key, value)
    assert refused.value.key == key
    assert refused.value.path.startswith(path)
    assert key in str(refused.value)
    assert await _snapshot(w) == before
    async with w.engine.connect() as conn:
        entry = (
            await conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(1))
        ).one()
    assert (entry.outcome, entry.reason) == ("refused", "invalid_configuration")


async def test_a_document_over_the_size_budget_is_refused(unchanged: World) -> None:
    w = unchanged
    keys = [{"label": f"Key {n}", "sku": f"sku-{n:04d}-" + "x" * 50} for n in range(48)]
    grid = {"categories": [{"name": f"Tab {c}", "keys": keys} for c in range(12)]}
    with pytest.raises(InvalidConfiguration) as refused:
        await _set(w, Layer.STORE, w.store1, "quick_keys", grid)
    assert "budget" in str(refused.value)
    assert refused.value.key == "quick_keys"


async def test_a_deleted_key_that_leaves_a_register_incomplete_is_refused(
    unchanged: World,
) -> None:
    w = unchanged
    with pytest.raises(InvalidConfiguration) as refused:
        await _delete(w, Layer.STORE, w.store1, "store")
    assert refused.value.key == "store"


async def test_refusals_of_keys_and_layers(unchanged: World) -> None:
    w = unchanged
    with pytest.raises(UnknownKey):
        await _set(w, Layer.STORE, w.store1, "colour_of_the_walls", "red")
    with pytest.raises(SettingNotFound):
        await _delete(w, Layer.STORE, w.store1, "printer")
    scope = TenantScope(w.own)
    with pytest.raises(StoreNotFound):
        await service.set_setting(
            w.engine,
            scope=scope,
            actor=ANA,
            layer=Layer.STORE,
            target=w.foreign_store,
            key="log_level",
            value="DEBUG",
        )
    with pytest.raises(TenantNotFound):
        await service.layer_settings(w.engine, scope=scope, layer=Layer.TENANT, target=w.foreign)
