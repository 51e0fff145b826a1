"""Preview, history and rollback of layers on the real store (SQLite and PostgreSQL): a preview
names exactly the devices, keys and versions the change then makes, and the refusal it then
gets, storing nothing; history lists each change in order with who and the audit entry, staff
without PIN hashes; a rollback restores the earlier effective documents as a new version, and
is refused when it would break a device; another tenant's layer is not found."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration import history, preview, rollback, service, staff
from control_plane.configuration.effective import device_configuration
from control_plane.configuration.errors import (
    InvalidConfiguration,
    LayerVersionNotFound,
    NothingToRestore,
)
from control_plane.configuration.layers import Layer
from control_plane.configuration.tables import config_layer_versions, config_settings
from control_plane.devices.errors import StoreNotFound, TenantNotFound
from control_plane.operators.audit import Actor
from control_plane.operators.tables import audit_log
from control_plane.tenancy import TenantScope
from tests.control_plane.configuration.config_harness import ANA, World, fresh_world, migrated
from tests.harness.services import create_pg_database, drop_pg_database

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]

BOB = Actor(actor="bob@acme.example", via="session")
INVALID_PRINTER = {"connector": "serial", "paper_width_mm": 80}  # no serial_device


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """One migrated store per back end for the module; each test seeds tenants of its own."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('history') / 'cloud.db'}"
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


async def _documents(w: World) -> dict[str, tuple[int | None, dict[str, Any]]]:
    """Every own and foreign register's (version, effective document)."""
    found = {}
    for device in (w.r1, w.r2, w.other_r1, f"{w.own}-02-r2", w.foreign_r1):
        view = await device_configuration(w.engine, device_id=device)
        found[device] = (view.version, {k.key: k.value for k in view.keys})
    return found


async def _stored_rows(w: World) -> tuple[int, int, int]:
    """How many settings, layer versions and audit entries the store holds."""
    async with w.engine.connect() as conn:
        return (
            int(await conn.scalar(select(func.count()).select_from(config_settings)) or 0),
            int(await conn.scalar(select(func.count()).select_from(config_layer_versions)) or 0),
            int(await conn.scalar(select(func.count()).select_from(audit_log)) or 0),
        )


@dataclass(frozen=True)
class Case:
    """A change to preview and then make, after ``setup`` (layer, target attribute, key, value)."""

    layer: Layer
    target: str  # an attribute of World
    key: str
    value: Any = None  # None: delete the key
    setup: list[tuple[Layer, str, str, Any]] = field(default_factory=list)

    def proposal(self) -> dict[str, Any]:
        """The preview's arguments."""
        if self.value is None:
            return {"values": {}, "delete": [self.key]}
        return {"values": {self.key: self.value}, "delete": []}


async def _make(w: World, case: Case) -> service.Change:
    """The change the case previews, made."""
    target = getattr(w, case.target)
    if case.value is None:
        return await service.delete_setting(
            w.engine, actor=BOB, layer=case.layer, target=target, key=case.key
        )
    return await service.set_setting(
        w.engine, actor=BOB, layer=case.layer, target=target, key=case.key, value=case.value
    )


CASES = [
    pytest.param(Case(Layer.TENANT, "own", "kiosk", {"language": "de"}), id="tenant-set"),
    pytest.param(Case(Layer.STORE, "store1", "receipt", {"header": ["Hi"]}), id="store-set"),
    pytest.param(Case(Layer.REGISTER, "r1", "log_level", "DEBUG"), id="register-set"),
    pytest.param(
        Case(
            Layer.TENANT,
            "own",
            "log_level",
            "ERROR",
            setup=[(Layer.STORE, "store1", "log_level", "WARNING")],
        ),
        id="tenant-set-under-a-store-that-sets-it",
    ),
    pytest.param(
        Case(
            Layer.STORE,
            "store1",
            "log_level",
            None,
            setup=[
                (Layer.TENANT, "own", "log_level", "ERROR"),
                (Layer.STORE, "store1", "log_level", "WARNING"),
            ],
        ),
        id="store-delete-falls-back",
    ),
]


@pytest.mark.parametrize("case", CASES)
async def test_a_preview_is_what_the_change_then_does(w: World, case: Case) -> None:
    for layer, target, key, value in case.setup:
        await service.set_setting(
            w.engine, actor=ANA, layer=layer, target=getattr(w, target), key=key, value=value
        )
    target = getattr(w, case.target)
    before, stored = await _documents(w), await _stored_rows(w)
    shown = await preview.preview_change(
        w.engine, actor=BOB, layer=case.layer, target=target, **case.proposal()
    )
    assert await _stored_rows(w) == stored  # a preview stores nothing, not even an audit entry

    change = await _make(w, case)
    after = await _documents(w)

    assert [d.device_id for d in shown.changed] == sorted(change.devices)
    assert change.devices  # each case changes some register
    for diff in shown.changed:
        old_version, old = before[diff.device_id]
        new_version, new = after[diff.device_id]
        assert (diff.version, diff.next_version) == (old_version, new_version)
        assert [k.key for k in diff.keys] == sorted(k for k in new if new[k] != old[k])
        assert [k.after for k in diff.keys] == [
            preview.summary(k.key, new[k.key]) for k in diff.keys
        ]
    assert set(shown.unchanged).isdisjoint(change.devices)
    assert all(before[device] == after[device] for device in shown.unchanged)
    assert (shown.invalid, shown.refusal) == ([], None)


async def test_a_preview_names_the_devices_a_change_would_break_and_the_refusal(w: World) -> None:
    stored = await _stored_rows(w)

    shown = await preview.preview_change(
        w.engine,
        actor=BOB,
        layer=Layer.STORE,
        target=w.store2,
        values={"printer": INVALID_PRINTER},
    )
    with pytest.raises(InvalidConfiguration) as refused:
        await service.set_setting(
            w.engine,
            actor=BOB,
            layer=Layer.STORE,
            target=w.store2,
            key="printer",
            value=INVALID_PRINTER,
        )

    assert shown.refusal == str(refused.value)
    assert [b.device_id for b in shown.invalid] == [w.other_r1, f"{w.own}-02-r2"]
    assert {(b.key, b.path) for b in shown.invalid} == {("printer", refused.value.path)}
    assert shown.changed == []
    settings, versions, _ = await _stored_rows(w)
    assert (settings, versions) == stored[:2]  # the refused change: only its refusal audited


async def test_history_lists_each_change_in_order_with_who_and_the_audit_entry(w: World) -> None:
    first = await service.set_setting(
        w.engine, actor=ANA, layer=Layer.STORE, target=w.store1, key="log_level", value="DEBUG"
    )
    second = await service.set_setting(
        w.engine, actor=BOB, layer=Layer.STORE, target=w.store1, key="log_level", value="ERROR"
    )
    third = await service.delete_setting(
        w.engine, actor=ANA, layer=Layer.STORE, target=w.store1, key="log_level"
    )
    await staff.add_staff(
        w.engine, actor=BOB, store_id=w.store1, name="Kim", role="cashier", pin="4821"
    )

    versions = await history.layer_history(w.engine, layer=Layer.STORE, target=w.store1)

    assert [v.version for v in versions] == [5, 4, 3, 2, 1]  # 1: the seed's store identity
    assert [(v.kind, v.actor) for v in versions[1:4]] == [
        ("delete", ANA.actor),
        ("set", BOB.actor),
        ("set", ANA.actor),
    ]
    assert [v.audit_id for v in versions[1:4]] == [
        third.audit_id,
        second.audit_id,
        first.audit_id,
    ]
    assert [(c.key, c.before, c.after, c.was_set, c.is_set) for c in versions[3].changes] == [
        ("log_level", None, "DEBUG", False, True)
    ]
    assert [(c.before, c.after) for c in versions[2].changes] == [("DEBUG", "ERROR")]
    assert [(c.before, c.is_set) for c in versions[1].changes] == [("ERROR", False)]
    assert versions[0].changes[0].key == "staff"
    assert "$argon2id$" not in json.dumps([v.settings for v in versions])
    assert "$argon2id$" not in json.dumps([[c.after for c in v.changes] for v in versions])

    devices = await history.device_versions(w.engine, device_id=w.r1)
    assert [d.version for d in devices] == list(range(devices[0].version, 0, -1))
    latest = devices[0]
    assert (latest.keys, latest.layer, latest.target, latest.actor) == (
        ["staff"],
        "store",
        w.store1,
        BOB.actor,
    )
    assert (devices[2].keys, devices[2].layer_version, devices[2].audit_id) == (
        ["log_level"],
        3,
        second.audit_id,
    )


async def test_a_rollback_restores_the_earlier_documents_as_a_new_version(w: World) -> None:
    await service.set_setting(
        w.engine, actor=ANA, layer=Layer.STORE, target=w.store1, key="log_level", value="DEBUG"
    )
    restore_to = (await history.layer_history(w.engine, layer=Layer.STORE, target=w.store1))[0]
    earlier = await _documents(w)
    await service.set_setting(
        w.engine,
        actor=ANA,
        layer=Layer.STORE,
        target=w.store1,
        key="receipt",
        value={"footer": ["Danke"]},
    )
    await service.set_setting(
        w.engine, actor=ANA, layer=Layer.STORE, target=w.store1, key="log_level", value="ERROR"
    )
    before = await _documents(w)
    shown = await preview.preview_rollback(
        w.engine, actor=BOB, layer=Layer.STORE, target=w.store1, version=restore_to.version
    )

    done = await rollback.rollback_layer(
        w.engine, actor=BOB, layer=Layer.STORE, target=w.store1, version=restore_to.version
    )

    after = await _documents(w)
    for device in (w.r1, w.r2):
        assert after[device][1] == earlier[device][1]
        assert after[device][0] == (before[device][0] or 0) + 1
    assert after[w.other_r1] == before[w.other_r1]
    assert sorted(done.devices) == [d.device_id for d in shown.changed] == [w.r1, w.r2]
    assert done.keys == shown.keys == ["log_level", "receipt"]
    [latest, *_] = await history.layer_history(w.engine, layer=Layer.STORE, target=w.store1)
    assert (latest.version, latest.kind, latest.restored, latest.actor) == (
        restore_to.version + 3,
        "rollback",
        restore_to.version,
        BOB.actor,
    )
    assert latest.settings == restore_to.settings
    async with w.engine.connect() as conn:
        entry = (await conn.execute(select(audit_log).where(audit_log.c.id == done.audit_id))).one()
    assert (entry.actor, entry.outcome, entry.target) == (BOB.actor, "ok", f"store/{w.store1}")
    assert json.loads(entry.after)["restored"] == restore_to.version
    with pytest.raises(NothingToRestore):
        await rollback.rollback_layer(
            w.engine, actor=BOB, layer=Layer.STORE, target=w.store1, version=restore_to.version
        )
    with pytest.raises(LayerVersionNotFound):
        await rollback.rollback_layer(
            w.engine, actor=BOB, layer=Layer.STORE, target=w.store1, version=99
        )


async def test_a_rollback_that_would_break_a_register_is_refused_and_changes_nothing(
    w: World,
) -> None:
    # the seed set the tenant's currency (version 1), then tax and hours: without them no
    # register has a complete document
    before, stored = await _documents(w), await _stored_rows(w)
    shown = await preview.preview_rollback(
        w.engine, actor=BOB, layer=Layer.TENANT, target=w.own, version=1
    )

    with pytest.raises(InvalidConfiguration) as refused:
        await rollback.rollback_layer(
            w.engine, actor=BOB, layer=Layer.TENANT, target=w.own, version=1
        )

    assert shown.refusal == str(refused.value)
    assert len(shown.invalid) == 4
    assert await _documents(w) == before
    settings, versions, audited = await _stored_rows(w)
    assert (settings, versions, audited) == (stored[0], stored[1], stored[2] + 1)
    async with w.engine.connect() as conn:
        entry = (
            await conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(1))
        ).one()
    assert (entry.outcome, entry.reason, entry.target) == (
        "refused",
        "invalid_configuration",
        f"tenant/{w.own}",
    )


async def test_another_tenant_may_not_preview_read_or_roll_back_a_layer(w: World) -> None:
    own = TenantScope(w.own)
    await service.set_setting(
        w.engine,
        actor=ANA,
        layer=Layer.STORE,
        target=w.foreign_store,
        key="log_level",
        value="DEBUG",
    )

    with pytest.raises(StoreNotFound):
        await preview.preview_change(
            w.engine,
            scope=own,
            actor=BOB,
            layer=Layer.STORE,
            target=w.foreign_store,
            values={"log_level": "ERROR"},
        )
    with pytest.raises(StoreNotFound):
        await history.layer_history(w.engine, scope=own, layer=Layer.STORE, target=w.foreign_store)
    with pytest.raises(TenantNotFound):
        await rollback.rollback_layer(
            w.engine, scope=own, actor=BOB, layer=Layer.TENANT, target=w.foreign, version=1
        )
    assert len(await history.layer_history(w.engine, layer=Layer.TENANT, target=w.foreign)) == 3


async def test_a_rollback_leaves_the_staff_as_the_staff_table_says(w: World) -> None:
    await staff.add_staff(
        w.engine, actor=ANA, store_id=w.store1, name="Kim", role="cashier", pin="4821"
    )
    [with_kim, *_] = await history.layer_history(w.engine, layer=Layer.STORE, target=w.store1)
    await service.set_setting(
        w.engine, actor=ANA, layer=Layer.STORE, target=w.store1, key="log_level", value="DEBUG"
    )
    await staff.add_staff(
        w.engine, actor=ANA, store_id=w.store1, name="Lu", role="manager", pin="9921"
    )

    done = await rollback.rollback_layer(
        w.engine, actor=BOB, layer=Layer.STORE, target=w.store1, version=with_kim.version
    )

    assert done.keys == ["log_level"]
    view = await device_configuration(w.engine, device_id=w.r1)
    [members] = [k.value["members"] for k in view.keys if k.key == "staff"]
    assert [m["name"] for m in members] == ["Kim", "Lu"]
