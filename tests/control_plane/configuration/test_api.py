"""The configuration API served whole (uvicorn, real Mosquitto, SQLite and PostgreSQL): a change
reaches the registers retained through the app's own link; an invalid value answers a 422 problem
naming the key with nothing changed; roles and tenants are refused; a PIN never comes back from
any answer, while every register of the store receives its argon2id hash."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from control_plane.operators.principal import Role
from protocols.messages import DesiredConfig
from tests.control_plane.configuration.config_harness import World, fresh_world
from tests.control_plane.configuration.test_publisher import device, next_config
from tests.harness.control_plane import ServedControlPlane, served_control_plane
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]

PIN = "482913"
_emails = itertools.count(1)


@dataclass
class Served:
    cp: ServedControlPlane
    broker: Mosquitto
    world: World

    def admin(self) -> httpx.AsyncClient:
        return self.cp.client(timeout=30)

    async def as_role(self, role: Role, tenant: str | None = None) -> httpx.AsyncClient:
        """A client logged in as a new operator of ``role`` in ``tenant`` (the own by default)."""
        tenant_id = None if role is Role.PLATFORM_ADMIN else (tenant or self.world.own)
        session = await self.cp.log_in(f"op{next(_emails)}@config.example", role, tenant_id)
        return httpx.AsyncClient(
            base_url=self.cp.url,
            headers={"Cookie": f"sf_session={session.secret}", "X-CSRF-Token": session.csrf},
            timeout=30,
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    directory = tmp_path_factory.mktemp("config-api")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / 'cloud.db'}"
    else:
        url = await create_pg_database()
    broker = Mosquitto(Path(directory))
    broker.start()
    try:
        async with served_control_plane(database_url=url, broker_url=broker.url) as cp:
            world = await fresh_world(cp.app.state.engine)
            cp.app.state.config_link.poke()
            yield Served(cp=cp, broker=broker, world=world)
    finally:
        broker.kill()
        if request.param == "postgresql":
            await drop_pg_database(url)


async def _put(client: httpx.AsyncClient, path: str, value: Any) -> httpx.Response:
    return await client.put(path, json={"value": value})


async def test_a_change_through_the_api_reaches_the_registers_retained(served: Served) -> None:
    w = served.world
    async with device(served.broker, w.r1) as r1:
        before = await next_config(r1)
        async with served.admin() as admin:
            answer = await _put(admin, f"/api/config/stores/{w.store1}/settings/log_level", "DEBUG")
        assert answer.status_code == 200, answer.text
        assert sorted(answer.json()["devices"]) == [w.r1, w.r2]
        after = await next_config(r1)
    assert (after.version, after.doc["log_level"]) == (before.version + 1, "DEBUG")


async def test_an_invalid_value_answers_422_naming_the_key_and_nothing_changes(
    served: Served,
) -> None:
    w = served.world
    async with served.admin() as admin:
        layer = f"/api/config/stores/{w.store2}/settings"
        settings_before = (await admin.get(layer)).json()
        effective_before = (await admin.get(f"/api/config/devices/{w.other_r1}")).json()
        answer = await _put(
            admin, f"{layer}/printer", {"connector": "serial", "paper_width_mm": 80}
        )
        assert answer.status_code == 422
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["reason"] == "invalid_configuration"
        assert "'printer'" in problem["detail"]
        assert "serial_device" in problem["detail"]
        assert (await admin.get(layer)).json() == settings_before
        assert (await admin.get(f"/api/config/devices/{w.other_r1}")).json() == effective_before


@pytest.mark.parametrize(
    ("key", "value", "path", "why"),
    [
        pytest.param(
            "printer",
            {"connector": "network", "host": "10.0.0.9", "port": 70000},
            "printer.port",
            "less than or equal to 65535",
            id="printer-port",
        ),
        pytest.param(
            "quick_keys",
            {"categories": [{"name": "Bakery", "keys": [{"label": "Bun", "sku": ""}]}]},
            "quick_keys.categories[0].keys[0].sku",
            "at least 1 character",
            id="quick-key-sku",
        ),
    ],
)
async def test_a_refusal_names_the_json_path_and_the_reason(
    served: Served, key: str, value: Any, path: str, why: str
) -> None:
    w = served.world
    async with served.admin() as admin:
        answer = await _put(admin, f"/api/config/stores/{w.store2}/settings/{key}", value)
    assert answer.status_code == 422, answer.text
    assert answer.json()["reason"] == "invalid_configuration"
    assert f"refused: {path}: " in answer.json()["detail"]
    assert why in answer.json()["detail"]


@pytest.mark.parametrize(
    ("role", "kind", "target", "status"),
    [
        pytest.param(Role.VIEWER, "stores", "store1", 403, id="viewer-store"),
        pytest.param(Role.OPERATOR, "tenants", "own", 403, id="operator-tenant"),
        pytest.param(Role.OPERATOR, "stores", "store1", 200, id="operator-store"),
        pytest.param(Role.TENANT_ADMIN, "tenants", "own", 200, id="admin-tenant"),
        pytest.param(Role.TENANT_ADMIN, "tenants", "foreign", 404, id="foreign-tenant"),
        pytest.param(Role.OPERATOR, "stores", "foreign_store", 404, id="foreign-store"),
        pytest.param(Role.OPERATOR, "devices", "foreign_r1", 404, id="foreign-register"),
    ],
)
async def test_who_may_set_a_key_where(
    served: Served, role: Role, kind: str, target: str, status: int
) -> None:
    path = f"/api/config/{kind}/{getattr(served.world, target)}/settings/log_level"
    async with await served.as_role(role) as client:
        answer = await _put(client, path, "WARNING")
    assert answer.status_code == status, answer.text


async def test_a_pin_is_never_returned_and_every_register_gets_its_hash(served: Served) -> None:
    w = served.world
    store_staff = f"/api/config/stores/{w.store1}/staff"
    answers: list[httpx.Response] = []
    async with served.admin() as admin:
        added = await admin.post(store_staff, json={"name": "Kim", "role": "cashier", "pin": PIN})
        assert added.status_code == 201, added.text
        member = added.json()
        answers += [
            added,
            await admin.post(store_staff, json={"name": "Lu", "role": "cashier", "pin": "12ab"}),
        ]
        assert answers[-1].status_code == 422
        answers += [
            await admin.get(store_staff),
            await admin.get(f"/api/config/stores/{w.store1}/settings"),
            await admin.get(f"/api/config/devices/{w.r1}"),
            await admin.get("/api/audit?limit=1000"),
            await admin.get("/api/audit.csv"),
        ]
    for answer in answers:
        assert PIN not in answer.text
        assert "$argon2id$" not in answer.text
    assert set(member) == {
        "id",
        "store_id",
        "name",
        "role",
        "created_at",
        "updated_at",
        "updated_by",
    }
    hasher = PasswordHasher()
    for register in (w.r1, w.r2):
        async with device(served.broker, register) as client:
            doc = (await next_config(client)).doc
        [kim] = [m for m in doc["staff"]["members"] if m["id"] == member["id"]]
        assert hasher.verify(kim["pin_hash"], PIN)


async def test_the_document_schema_is_published(served: Served) -> None:
    async with served.admin() as admin:
        schema = (await admin.get("/api/config/schema")).json()
    assert schema["x-size-budget-bytes"] == 32 * 1024
    assert {"store", "printer", "quick_keys", "staff"} <= set(schema["properties"])
    assert set(schema["required"]) == {"store", "currency", "tax", "hours"}


async def _config_at(register: aiomqtt.Client, version: int) -> DesiredConfig:
    """The first config message of ``version`` or newer (older ones still being published)."""
    while (found := await next_config(register)).version < version:
        pass
    return found


async def test_a_rollback_previewed_then_made_through_the_api_reaches_the_registers(
    served: Served,
) -> None:
    w = served.world
    layer = f"/api/config/stores/{w.store2}/settings"
    async with served.admin() as admin:
        for level in ("DEBUG", "ERROR"):
            assert (await _put(admin, f"{layer}/log_level", level)).status_code == 200
        [latest, earlier, *_] = (await admin.get(f"{layer}/history")).json()
        assert [c["after"] for c in (latest["changes"] + earlier["changes"])] == ["ERROR", "DEBUG"]
        desired = (await admin.get(f"/api/config/devices/{w.other_r1}")).json()["version"]
        async with device(served.broker, w.other_r1) as register:
            before = await _config_at(register, desired)  # the PUTs' may still be on their way
            shown = await admin.post(f"{layer}/preview", json={"restore": earlier["version"]})
            assert shown.status_code == 200, shown.text
            done = await admin.post(f"{layer}/rollback", json={"version": earlier["version"]})
            assert done.status_code == 200, done.text
            after = await _config_at(register, desired + 1)
        versions = (await admin.get(f"/api/config/devices/{w.other_r1}/versions")).json()
        entries = (await admin.get("/api/audit?limit=50")).json()

    assert [d["device_id"] for d in shown.json()["changed"]] == sorted(done.json()["devices"])
    [diff] = [d for d in shown.json()["changed"] if d["device_id"] == w.other_r1]
    assert diff["keys"] == [{"key": "log_level", "before": '"ERROR"', "after": '"DEBUG"'}]
    assert diff["next_version"] == after.version == before.version + 1
    assert after.doc["log_level"] == "DEBUG"
    assert (done.json()["version"], done.json()["restored"]) == (
        latest["version"] + 1,
        earlier["version"],
    )
    assert (versions[0]["version"], versions[0]["keys"], versions[0]["layer_version"]) == (
        after.version,
        ["log_level"],
        done.json()["version"],
    )
    assert [e["target"] for e in entries if e["id"] == done.json()["audit_id"]] == [
        f"store/{w.store2}"
    ]
    assert not [e for e in entries if "preview" in e["target"]]  # a preview changes nothing


#: The method of each history route.
METHOD = {"preview": "POST", "history": "GET", "rollback": "POST"}


@pytest.mark.parametrize(
    ("role", "kind", "target", "what", "status"),
    [
        pytest.param(Role.VIEWER, "stores", "store1", "rollback", 403, id="viewer-rollback"),
        pytest.param(Role.VIEWER, "stores", "store1", "preview", 403, id="viewer-preview"),
        pytest.param(Role.VIEWER, "stores", "store1", "history", 200, id="viewer-history"),
        pytest.param(Role.OPERATOR, "tenants", "own", "preview", 403, id="operator-tenant"),
        pytest.param(Role.TENANT_ADMIN, "tenants", "foreign", "preview", 404, id="foreign-preview"),
        pytest.param(
            Role.TENANT_ADMIN, "stores", "foreign_store", "history", 404, id="foreign-history"
        ),
        pytest.param(
            Role.TENANT_ADMIN, "stores", "foreign_store", "rollback", 404, id="foreign-rollback"
        ),
    ],
)
async def test_who_may_preview_read_the_history_and_roll_back(
    served: Served, role: Role, kind: str, target: str, what: str, status: int
) -> None:
    path = f"/api/config/{kind}/{getattr(served.world, target)}/settings/{what}"
    body = {"rollback": {"version": 1}, "preview": {"values": {"log_level": "DEBUG"}}}
    async with await served.as_role(role) as client:
        answer = await client.request(METHOD[what], path, json=body.get(what))
    assert answer.status_code == status, answer.text


def _next(answer: httpx.Response) -> str | None:
    """The path of the next page from the answer's ``Link: <…>; rel="next"`` (None: the last)."""
    link = answer.headers.get("link")
    if link is None:
        return None
    target, rel = link.split(";")
    assert rel.strip() == 'rel="next"'
    return target.strip().removeprefix("<").removesuffix(">")


async def test_history_and_versions_are_listed_a_page_at_a_time(served: Served) -> None:
    w = served.world
    layer = f"/api/config/devices/{w.r2}/settings"
    async with served.admin() as admin:
        for n in range(7):  # seven versions of r2's register layer, seven of its document
            level = ("DEBUG", "WARNING")[n % 2]
            assert (await _put(admin, f"{layer}/log_level", level)).status_code == 200
        whole = (await admin.get(f"{layer}/history")).json()
        pages: list[list[int]] = []
        path: str | None = f"{layer}/history?limit=3"
        while path is not None:
            answer = await admin.get(path)
            assert answer.status_code == 200, answer.text
            pages.append([v["version"] for v in answer.json()])
            path = _next(answer)
        documents = (await admin.get(f"/api/config/devices/{w.r2}/versions")).json()
        first = await admin.get(f"/api/config/devices/{w.r2}/versions?limit=2")
        second = await admin.get(_next(first) or "")
        refused = [
            (await admin.get(f"{layer}/history?{query}")).status_code
            for query in ("limit=0", "limit=201", "before=0", "before=x")
        ]
        past_every_version = await admin.get(f"{layer}/history?before={2**63}")  # > BIGINT
    assert [v["version"] for v in whole] == [7, 6, 5, 4, 3, 2, 1]  # under the default page
    assert pages == [[7, 6, 5], [4, 3, 2], [1]]
    assert [v["version"] for v in first.json() + second.json()] == [
        v["version"] for v in documents[:4]
    ]
    assert refused == [422, 422, 422, 422]
    assert past_every_version.status_code == 200, past_every_version.text
    assert past_every_version.json() == whole


def _support_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode() + " support@desk"


async def test_only_a_tenant_admin_opens_or_closes_support_ssh(served: Served) -> None:
    """``support`` opens SSH into the store's boxes: an operator may configure the store (its
    log level here) but neither set, delete, stage nor roll back support's way in."""
    w = served.world
    layer = f"/api/config/stores/{w.store1}/settings"
    support = {"ssh": True, "ssh_keys": [_support_key()]}
    async with await served.as_role(Role.OPERATOR) as operator:
        refused = await _put(operator, f"{layer}/support", support)
        assert refused.status_code == 403, refused.text
        assert refused.json()["reason"] == "support_access_refused"
        assert "tenant admin" in refused.json()["advice"]
        staged = await operator.post(f"{layer}/support/waves", json={"value": support})
        assert staged.status_code == 403, staged.text
        assert (await _put(operator, f"{layer}/log_level", "INFO")).status_code == 200
    async with await served.as_role(Role.TENANT_ADMIN) as admin, device(served.broker, w.r1) as r1:
        before = (await admin.get(f"{layer}/history")).json()[0]["version"]
        opened = await _put(admin, f"{layer}/support", support)
        assert opened.status_code == 200, opened.text
        doc = (await next_config(r1)).doc
        while doc["support"] != support:  # an earlier change may still be on its way
            doc = (await next_config(r1)).doc
    async with await served.as_role(Role.OPERATOR) as operator:
        closed = await operator.delete(f"{layer}/support")
        assert closed.status_code == 403, closed.text
        # restoring the version before support was opened would close it: the admin's call too
        back = await operator.post(f"{layer}/rollback", json={"version": before})
        assert back.status_code == 403, back.text
        assert back.json()["reason"] == "support_access_refused"
        settings = (await operator.get(layer)).json()
    assert any(s["key"] == "support" for s in settings["settings"]), settings
    async with await served.as_role(Role.TENANT_ADMIN) as admin:
        assert (await admin.delete(f"{layer}/support")).status_code == 200
