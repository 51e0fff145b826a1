"""Who may do what, route by route: every API route and console page of the app × role × own or
foreign tenant, and without credentials, with an expired session, with a token whose scopes do not
cover it and (unsafe methods) with a session but no CSRF token → the documented answer.

How it works: ``TABLE`` has one row per route the app serves — its policy action (None: open to
anyone, ``DEVICE``: the device's own assertion), what it answers when allowed, and what it answers
for another tenant's object (404 exactly like a missing one, 403 for a client-supplied tenant id,
or the object hidden from a list). The expected answer of each role comes from the policy table
(``ROLE_ACTIONS``); the row says which action that is, and `test_each_route_is_guarded_as_the_
table_says` checks the route really requires it. `test_every_served_route_is_in_the_table`
reads the routes from the app itself: a route added without a row here fails, so a new
unguarded route cannot slip in. Requests go over HTTP to the served app (Host check included),
on SQLite and on PostgreSQL. Each case builds what it acts on afresh where the request changes it
(a device to decommission, an enrolment to revoke), so no case depends on another's order.
"""

# The table reads best as one row per route, so its lines run past 100 columns:
# ruff: noqa: E501

from __future__ import annotations

import itertools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.alerts.tables import alerts
from control_plane.commands import service as commands
from control_plane.configuration import drift as config_drift
from control_plane.configuration import history as config_history
from control_plane.configuration import service as config_service
from control_plane.configuration import staff as config_staff
from control_plane.configuration import staged as config_staged
from control_plane.configuration.layers import Layer
from control_plane.customers import service as customer_service
from control_plane.customers.schemas import CustomerIn
from control_plane.devices import service as registry
from control_plane.devices.state import apply_state
from control_plane.loyalty.ledger import Movement, MovementKind
from control_plane.loyalty.ledger import book as book_loyalty
from control_plane.notifications import channels as notification_channels
from control_plane.notifications.settings import NotificationSettings
from control_plane.operators import service as operators
from control_plane.operators import sessions
from control_plane.operators.audit import Actor
from control_plane.operators.gatekeeper import Gatekeeper
from control_plane.operators.guards import guard_of, routes
from control_plane.operators.passwords import Passwords
from control_plane.operators.policy import AUTHENTICATED, ROLE_ACTIONS, SCOPE_ACTIONS, Action, Scope
from control_plane.operators.principal import Role
from control_plane.operators.ratelimit import TokenBuckets
from control_plane.provisioning import service as provisioning
from control_plane.provisioning.authority import FleetAuthority
from control_plane.provisioning.settings import ProvisioningSettings
from control_plane.releases.tables import releases
from control_plane.rollouts import service as rollouts
from control_plane.rollouts.model import RolloutIn, WaveIn
from control_plane.sales.tables import sales
from control_plane.stock import service as stock
from control_plane.stock.tables import stock_transfers
from control_plane.tenancy import EVERY_TENANT
from protocols.customer_card import new_customer_id
from protocols.messages import State
from provisioning.device_keys import DeviceIdentity
from tests.control_plane.configuration.config_harness import TENANT_KEYS, store_identity
from tests.control_plane.reports.seed import Seeder, sale_body
from tests.harness.control_plane import ServedControlPlane, operator_settings, served_control_plane
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database, wait_until

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]

OWN, FOREIGN = "acme", "globex"
PRINCIPALS = (Role.PLATFORM_ADMIN, Role.TENANT_ADMIN, Role.OPERATOR, Role.VIEWER)
DEVICE = "device"  # a device route: the device's own assertion, never an operator's session
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HOUR_MS = 3_600_000


# -- the world every case acts in: two tenants, each with a store, a device, an enrolment … ------


@dataclass(frozen=True)
class Tenant:
    """One tenant's objects the requests name (``victim``: an operator whose token is revoked)."""

    id: str
    store: str
    device: str
    enrolment: str
    command: str
    sale: str
    count: str
    victim: str
    group: str = ""
    staff: str = ""


@dataclass
class World:
    """The served control plane, its store, the operators of each role and both tenants."""

    served: ServedControlPlane
    authority: FleetAuthority
    operator_ids: dict[Role, str]
    tenants: dict[str, Tenant]
    csr: str
    numbers: Iterator[int] = field(default_factory=itertools.count)

    @property
    def engine(self) -> AsyncEngine:
        engine: AsyncEngine = self.served.app.state.engine
        return engine

    @property
    def app(self) -> FastAPI:
        return self.served.app

    def fresh(self, stem: str) -> str:
        """An id nobody used yet (ids are topic-safe: lower case, digits, '-')."""
        return f"{stem}-x{next(self.numbers)}"

    async def fresh_device(self, tenant: str) -> str:
        device_id = self.fresh(f"{tenant}-01")
        await registry.register_device(
            self.engine, scope=EVERY_TENANT, device_id=device_id, store_id=f"{tenant}-01"
        )
        return device_id

    async def fresh_enrolment(self, tenant: str) -> str:
        created = await provisioning.create_enrolment(
            engine=self.engine,
            authority=self.authority,
            tenant_id=tenant,
            store_id=f"{tenant}-01",
            created_by="table",
        )
        return created.view.id

    async def fresh_victim_token(self, tenant: str) -> str:
        victim = await operators.find_operator(self.engine, email=self.tenants[tenant].victim)
        view, _ = await operators.create_token(
            self.engine,
            settings=operator_settings(),
            owner=victim,
            actor=operators.cli_actor(),
            name="victim",
            scopes=["read"],
            now=_now(),
        )
        return view.id

    async def session(self, role: Role, *, expired: bool = False) -> dict[str, str]:
        """A new active session of ``role`` (an expired one: opened 13 h ago for 12 h)."""
        now = _now() - 13 * HOUR_MS if expired else _now()
        async with self.engine.begin() as conn:
            secret = await sessions.open_session(
                conn,
                operator_id=self.operator_ids[role],
                stage="active",
                now=now,
                lifetime_ms=12 * HOUR_MS,
                client="127.0.0.1",
                user_agent="access table",
            )
        return {"Cookie": f"sf_session={secret}", "X-CSRF-Token": sessions.csrf_token(secret)}

    async def token(self, role: Role, scopes: list[str]) -> dict[str, str]:
        """A new API token of ``role``'s operator with ``scopes``."""
        owner = await operators.find_operator(self.engine, email=email_of(role))
        _, secret = await operators.create_token(
            self.engine,
            settings=operator_settings(),
            owner=owner,
            actor=operators.cli_actor(),
            name="table",
            scopes=scopes,
            now=_now(),
        )
        return {"Authorization": f"Bearer {secret}"}


def _now() -> int:
    return time.time_ns() // 1_000_000


def email_of(role: Role) -> str:
    return f"{role.value.replace('_', '-')}@{OWN}.example"


@dataclass(frozen=True)
class Call:
    """One request of a row: its path (with query), its JSON body or form, the id it must show."""

    path: str
    body: Any = None
    marker: str = ""
    form: Mapping[str, str] | None = None


Build = Callable[[World, Tenant], Awaitable[Call]]


def fixed(path: str, body: Any = None, *, form: Mapping[str, str] | None = None) -> Build:
    """A request that names no tenant's object."""

    async def build(world: World, tenant: Tenant) -> Call:
        return Call(path, body, form=form)

    return build


def _fill(value: Any, tenant: Tenant) -> Any:
    """``value`` with ``{t.…}`` in its strings replaced by the tenant's objects."""
    if isinstance(value, str):
        return value.format(t=tenant)
    if isinstance(value, dict):
        return {key: _fill(item, tenant) for key, item in value.items()}
    return value


def named(template: str, *, marker: str = "", body: Any = None) -> Build:
    """A request whose path (and body) names the tenant's objects (``{t.device}`` …)."""

    async def build(world: World, tenant: Tenant) -> Call:
        return Call(template.format(t=tenant), _fill(body, tenant), marker.format(t=tenant))

    return build


def made(make: Callable[[World, Tenant], Awaitable[Call]]) -> Build:
    """A request on something made afresh for it (the request changes it)."""
    return make


async def _decommission(world: World, tenant: Tenant) -> Call:
    return Call(f"/api/devices/{await world.fresh_device(tenant.id)}/decommission", {})


async def _revoke_enrolment(world: World, tenant: Tenant) -> Call:
    enrolment = await world.fresh_enrolment(tenant.id)
    return Call(f"/api/enrolments/{enrolment}/revoke", {"revoked_by": "table"})


async def _revoke_token(world: World, tenant: Tenant) -> Call:
    return Call(f"/api/tokens/{await world.fresh_victim_token(tenant.id)}/revoke")


async def _new_store(world: World, tenant: Tenant) -> Call:
    return Call("/api/stores", {"id": world.fresh(tenant.id), "tenant_id": tenant.id, "name": "S"})


async def _new_device(world: World, tenant: Tenant) -> Call:
    return Call("/api/devices", {"id": world.fresh(f"{tenant.id}-01"), "store_id": tenant.store})


async def _new_tenant(world: World, tenant: Tenant) -> Call:
    return Call("/api/tenants", {"id": world.fresh("tenant"), "name": "New"})


async def _new_operator(world: World, tenant: Tenant) -> Call:
    email = f"{world.fresh('new')}@{tenant.id}.example"
    return Call("/api/operators", {"email": email, "role": "viewer", "tenant_id": tenant.id})


async def _enrol(world: World, tenant: Tenant) -> Call:
    return Call("/api/enrol", {"token": "sfe_" + "A" * 32, "csr_pem": world.csr})


TABLE_RELEASE = "0.0.1"


async def _release(world: World) -> None:
    """A published release row (the bundle's bytes are not needed to name it)."""
    async with world.engine.begin() as conn:
        if (await conn.execute(select(releases.c.version))).first() is None:
            await conn.execute(
                insert(releases).values(
                    version=TABLE_RELEASE, sha256="0" * 64, size=1, key_id="0" * 16,
                    signature="s", min_agent_version="0.1.0", manifest="{}",
                    published_by="table", published_at=_now(),
                )
            )  # fmt: skip


async def _rollout_of(world: World, tenant: Tenant, *verbs: rollouts.Verb) -> str:
    """A new rollout of the tenant's devices, moved through ``verbs``."""
    await _release(world)
    view = await rollouts.create_rollout(
        world.engine,
        scope=EVERY_TENANT,
        spec=RolloutIn(release=TABLE_RELEASE, tenant_id=tenant.id, waves=[WaveIn(percent=100)]),
        actor=operators.cli_actor(),
        client="table",
        now_ms=_now(),
    )
    for verb in verbs:
        await rollouts.act(
            world.engine, scope=EVERY_TENANT, rollout_id=view.id, verb=verb,
            actor=operators.cli_actor(), client="table", now_ms=_now(),
        )  # fmt: skip
    return view.id


async def _get_release(world: World, tenant: Tenant) -> Call:
    await _release(world)
    return Call(f"/api/releases/{TABLE_RELEASE}")


async def _new_rollout(world: World, tenant: Tenant) -> Call:
    await _release(world)
    return Call("/api/rollouts", {"release": TABLE_RELEASE, "tenant_id": tenant.id})


async def _listed_rollout(world: World, tenant: Tenant) -> Call:
    return Call("/api/rollouts", marker=await _rollout_of(world, tenant))


async def _a_rollout(world: World, tenant: Tenant) -> Call:
    return Call(f"/api/rollouts/{await _rollout_of(world, tenant)}")


async def _listed_rollout_page(world: World, tenant: Tenant) -> Call:
    return Call("/rollouts", marker=await _rollout_of(world, tenant))


async def _a_rollout_page(world: World, tenant: Tenant) -> Call:
    return Call(f"/rollouts/{await _rollout_of(world, tenant)}")


def _rollout_action(verb: str, *before: rollouts.Verb) -> Build:
    """``POST /api/rollouts/{id}/{verb}`` on a new rollout moved through ``before``."""

    async def build(world: World, tenant: Tenant) -> Call:
        return Call(f"/api/rollouts/{await _rollout_of(world, tenant, *before)}/{verb}")

    return build


SEED = Actor(actor="seed", via="cli")


def _config_delete(kind: str, layer: Layer, target: Callable[[Tenant], str]) -> Build:
    """DELETE of a key set just before on the tenant's layer (so there is one to delete)."""

    async def build(world: World, tenant: Tenant) -> Call:
        await config_service.set_setting(
            world.engine,
            actor=SEED,
            layer=layer,
            target=target(tenant),
            key="log_level",
            value="WARNING",
        )
        return Call(f"/api/config/{kind}/{target(tenant)}/settings/log_level")

    return build


def _config_rollback(kind: str, layer: Layer, target: Callable[[Tenant], str]) -> Build:
    """POST rollback of the tenant's layer to the version before its latest (made just before)."""

    async def build(world: World, tenant: Tenant) -> Call:
        for value in ("WARNING", "ERROR"):
            await config_service.set_setting(
                world.engine,
                actor=SEED,
                layer=layer,
                target=target(tenant),
                key="log_level",
                value=value,
            )
        versions = await config_history.layer_history(
            world.engine, layer=layer, target=target(tenant), limit=2
        )
        path = f"/api/config/{kind}/{target(tenant)}/settings/rollback"
        return Call(path, {"version": versions[1].version})

    return build


async def _config_change(world: World, tenant: Tenant, *verbs: config_staged.Verb) -> str:
    """A new change of the tenant's store layer through waves, still running (its canary is
    given an hour to stay healthy), moved through ``verbs``."""
    view = await config_staged.start_change(
        world.engine,
        actor=SEED,
        layer=Layer.STORE,
        target=tenant.store,
        key="features",
        value={world.fresh("flag"): True},
        waves=[WaveIn(devices=1)],
        health_s=3600,
    )
    for verb in verbs:
        await config_staged.act(world.engine, actor=SEED, change_id=view.id, verb=verb)
    return view.id


def _on_config_change(suffix: str = "", *before: config_staged.Verb) -> Build:
    """A request on a change through waves made afresh for it (``marker``: a list shows it)."""

    async def build(world: World, tenant: Tenant) -> Call:
        change_id = await _config_change(world, tenant, *before)
        path = "/api/config/changes" + (f"/{change_id}{suffix}" if suffix != "list" else "")
        return Call(path, marker=change_id if suffix == "list" else "")

    return build


async def _remove_staff(world: World, tenant: Tenant) -> Call:
    member = await config_staff.add_staff(
        world.engine, actor=SEED, store_id=tenant.store, name="Temp", role="cashier", pin="5555"
    )
    return Call(f"/api/config/stores/{tenant.store}/staff/{member.id}")


async def _configuration(
    engine: AsyncEngine, tenant: str, store: str, device: str
) -> tuple[str, str]:
    """A complete document for the tenant's register that it has not applied (drift), a store
    group and a cashier: (group id, staff id)."""
    for key, value in TENANT_KEYS.items():
        await config_service.set_setting(
            engine, actor=SEED, layer=Layer.TENANT, target=tenant, key=key, value=value
        )
    await config_service.set_setting(
        engine,
        actor=SEED,
        layer=Layer.STORE,
        target=store,
        key="store",
        value=store_identity(store),
    )
    await config_drift.record_report(engine, device_id=device, version=0, hashes=None, now=_now())
    group = f"{tenant}-city"
    await config_service.put_group(
        engine, actor=SEED, group_id=group, tenant_id=tenant, tag="city", priority=0
    )
    member = await config_staff.add_staff(
        engine, actor=SEED, store_id=store, name="Sam", role="cashier", pin="1234"
    )
    return group, member.id


async def _alert(world: World, tenant: Tenant) -> str:
    """A new alert of the tenant's device (cleared, so any number may exist) (issue 13)."""
    alert_id = world.fresh("alert").replace("-", "")
    async with world.engine.begin() as conn:
        await conn.execute(
            insert(alerts).values(
                id=alert_id, tenant_id=tenant.id, store_id=tenant.store, device_id=tenant.device,
                kind="silent", detail="table", opened_at=_now(), seen_at=_now(), cleared_at=_now(),
            )
        )  # fmt: skip
    return alert_id


async def _listed_alert(world: World, tenant: Tenant) -> Call:
    return Call("/api/alerts?state=all", marker=await _alert(world, tenant))


async def _alerts_csv(world: World, tenant: Tenant) -> Call:
    return Call("/api/alerts.csv?state=all", marker=await _alert(world, tenant))


async def _alerts_page(world: World, tenant: Tenant) -> Call:
    return Call("/alerts?state=all", marker=await _alert(world, tenant))


async def _ack_alert(world: World, tenant: Tenant) -> Call:
    return Call(f"/api/alerts/{await _alert(world, tenant)}/ack")


async def _channel(world: World, tenant: Tenant) -> str:
    """A new webhook channel of the tenant (to a name that never resolves) (issue 13)."""
    row, _ = await notification_channels.create_channel(
        world.engine,
        tenant_id=tenant.id,
        spec=notification_channels.ChannelSpec(
            name="t", kind="webhook", url="https://hooks.invalid/x"
        ),
        created_by="table",
        settings=NotificationSettings(),
        now_ms=_now(),
    )
    return str(row["id"])


async def _listed_channel(world: World, tenant: Tenant) -> Call:
    return Call("/api/notifications/channels", marker=await _channel(world, tenant))


def _on_channel(suffix: str) -> Build:
    """A request on a channel made afresh for it (deleted, tested, its deliveries read)."""

    async def build(world: World, tenant: Tenant) -> Call:
        return Call(f"/api/notifications/channels/{await _channel(world, tenant)}{suffix}")

    return build


async def _loyal_customer(world: World, tenant: Tenant) -> str:
    """A new customer of the tenant with a loyalty balance (issue 14)."""
    customer = new_customer_id()
    async with world.engine.begin() as conn:
        await book_loyalty(
            conn,
            [
                Movement(
                    source=f"table/{customer}", tenant_id=tenant.id, customer_id=customer,
                    kind=MovementKind.EARN, points=100, at=_now(),
                )
            ],
        )  # fmt: skip
    return customer


def _on_loyalty(suffix: str, body: Any = None) -> Build:
    """A request on a loyalty balance made afresh for it (read, adjusted)."""

    async def build(world: World, tenant: Tenant) -> Call:
        customer = await _loyal_customer(world, tenant)
        return Call(f"/api/loyalty/customers/{customer}{suffix}", body)

    return build


async def _customer(world: World, tenant: Tenant) -> str:
    """A new customer of the tenant, its name the fresh id it is searched by (issue 14)."""
    created = await customer_service.create_customer(
        world.engine,
        keyring=world.app.state.customer_keyring,
        tenant_id=tenant.id,
        body=CustomerIn(name=world.fresh("zed"), email="zed@example.org"),
        actor=operators.cli_actor(),
    )
    return created.id


def _on_customer(suffix: str, body: Any = None, *, base: str = "/api/customers") -> Build:
    """A request on a customer made afresh for it (read, consent, card, export, erased)."""

    async def build(world: World, tenant: Tenant) -> Call:
        return Call(f"{base}/{await _customer(world, tenant)}{suffix}", body)

    return build


async def _listed_customer(world: World, tenant: Tenant) -> Call:
    return Call(CUSTOMERS, marker=await _customer(world, tenant))


async def _searched_customer(world: World, tenant: Tenant) -> Call:
    customer = await _customer(world, tenant)
    found = await customer_service.get_customer(
        world.engine, keyring=world.app.state.customer_keyring, scope=EVERY_TENANT,
        customer_id=customer,
    )  # fmt: skip
    # no marker: a refused search must not show it, and a foreign tenant id is refused (403)
    return Call(CUSTOMERS + "/search", {"q": found.name, "tenant_id": tenant.id})


async def _customers_page(world: World, tenant: Tenant) -> Call:
    return Call("/customers", marker=await _customer(world, tenant))


# -- the table --------------------------------------------------------------------------------

Kind = Literal["api", "page", "open", "device"]
Foreign = Literal[404, 403, "hidden", "n/a"]


STOCK_GTIN = "07610200000019"


async def _stock_level(world: World, tenant: Tenant) -> None:
    """The tenant's store has a figure at its threshold, so it is listed and to reorder (issue 14)."""
    await stock.set_threshold(world.engine, store_id=tenant.store, gtin=STOCK_GTIN, low_at=5)


def _on_stock(path: str) -> Build:
    """A stock read (on-hand, reorder, their CSV, the page) that must list the tenant's store."""

    async def build(world: World, tenant: Tenant) -> Call:
        await _stock_level(world, tenant)
        return Call(path, marker=tenant.store)

    return build


async def _stock_transfer(world: World, tenant: Tenant) -> Call:
    """A transfer of the tenant's, in transit; the list must show it to its tenant only."""
    transfer_id = world.fresh(f"{tenant.id}-tr")
    async with world.engine.begin() as conn:
        await conn.execute(
            insert(stock_transfers).values(
                tenant_id=tenant.id, transfer_id=transfer_id, from_store=tenant.store,
                to_store=tenant.store, sent_at=_now(),
            )
        )  # fmt: skip
    return Call("/api/stock/transfers", marker=transfer_id)


@dataclass(frozen=True)
class Row:
    """One route: how it is guarded and what it answers.

    ``guard``: the policy action (``auth:self``: any operator), None for an open route, DEVICE for a
    device route. ``ok``: the answer when allowed. ``foreign``: another tenant's object answers 404
    (as a missing one), 403 (a client-supplied tenant id), is left out of a list ("hidden"), or the
    route names no tenant ("n/a"). ``own``: answers inside the own tenant that differ by role.
    ``pending``: the route's guard is another engineer's work in progress (xfail).
    """

    method: str
    path: str
    kind: Kind
    guard: str | None
    ok: int
    build: Build
    foreign: Foreign = "n/a"
    own: Mapping[Role, int] = field(default_factory=dict)
    pending: str = ""

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


A = Action
DEVICES = "/api/devices/{t.device}"
CONFIG = "/api/config"
CUSTOMERS = "/api/customers"
TABLE: tuple[Row, ...] = (
    # registry
    Row("POST", "/api/tenants", "api", A.TENANTS_WRITE, 201, made(_new_tenant)),
    Row("POST", "/api/stores", "api", A.STORES_WRITE, 201, made(_new_store), 403),
    Row("GET", "/api/stores", "api", A.DEVICES_READ, 200, named("/api/stores", marker="{t.store}"), "hidden"),
    Row("POST", "/api/devices", "api", A.DEVICES_WRITE, 201, made(_new_device), 404),
    Row("GET", "/api/devices", "api", A.DEVICES_READ, 200, named("/api/devices", marker="{t.device}"), "hidden"),
    Row("GET", "/api/devices/{device_id}", "api", A.DEVICES_READ, 200, named(DEVICES), 404),
    Row("GET", "/api/devices/{device_id}/state", "api", A.DEVICES_READ, 200, named(DEVICES + "/state"), 404),
    Row("GET", "/api/devices/{device_id}/os-updates", "api", A.DEVICES_READ, 200, named(DEVICES + "/os-updates"), 404),
    Row("GET", "/api/stock-counts", "api", A.DEVICES_READ, 200, named("/api/stock-counts", marker="{t.count}"), "hidden"),
    # commands
    Row("POST", "/api/devices/{device_id}/commands", "api", A.COMMANDS_SEND, 202, named(DEVICES + "/commands", body={"name": "printer.test_page", "args": {}}), 404),
    Row("GET", "/api/devices/{device_id}/commands", "api", A.DEVICES_READ, 200, named(DEVICES + "/commands", marker="{t.command}"), "hidden"),
    Row("GET", "/api/devices/{device_id}/commands/{command_id}", "api", A.DEVICES_READ, 200, named(DEVICES + "/commands/{t.command}"), 404),
    # sales
    Row("GET", "/api/sales", "api", A.SALES_READ, 200, named("/api/sales", marker="{t.sale}"), "hidden"),
    Row("GET", "/api/sales/totals", "api", A.SALES_READ, 200, named("/api/sales/totals", marker='"{t.store}"'), "hidden"),
    # reports (issue 13): another tenant's store is neither listed nor read, in JSON or CSV
    Row("GET", "/api/reports/{name}", "api", A.REPORTS_READ, 200, named("/api/reports/stores", marker="{t.store}"), "hidden"),
    Row("GET", "/api/reports/{name}.csv", "api", A.REPORTS_READ, 200, named("/api/reports/stores.csv", marker="{t.store}"), "hidden"),
    # fleet alerts (issue 13): another tenant's alert is neither listed nor acknowledged
    Row("GET", "/api/alerts", "api", A.ALERTS_READ, 200, made(_listed_alert), "hidden"),
    Row("GET", "/api/alerts.csv", "api", A.ALERTS_READ, 200, made(_alerts_csv), "hidden"),
    Row("POST", "/api/alerts/{alert_id}/ack", "api", A.ALERTS_ACK, 200, made(_ack_alert), 404),
    Row("GET", "/api/devices/{device_id}/history", "api", A.ALERTS_READ, 200, named(DEVICES + "/history"), 404),
    # alert notification channels (issue 13): tenant admins only; another tenant's is not found
    Row("GET", "/api/notifications/channels", "api", A.NOTIFICATIONS_MANAGE, 200, made(_listed_channel), "hidden"),
    Row("POST", "/api/notifications/channels", "api", A.NOTIFICATIONS_MANAGE, 201, named("/api/notifications/channels", body={"name": "t", "kind": "webhook", "url": "https://hooks.invalid/x", "tenant_id": "{t.id}"}), 403),
    Row("DELETE", "/api/notifications/channels/{channel_id}", "api", A.NOTIFICATIONS_MANAGE, 204, _on_channel(""), 404),
    Row("POST", "/api/notifications/channels/{channel_id}/test", "api", A.NOTIFICATIONS_MANAGE, 202, _on_channel("/test"), 404),
    Row("GET", "/api/notifications/channels/{channel_id}/deliveries", "api", A.NOTIFICATIONS_MANAGE, 200, _on_channel("/deliveries"), 404),
    # stock across stores (issue 14): every role reads its tenant's; operators set thresholds
    Row("GET", "/api/stock/on-hand", "api", A.STOCK_READ, 200, made(_on_stock("/api/stock/on-hand")), "hidden"),
    Row("GET", "/api/stock/on-hand.csv", "api", A.STOCK_READ, 200, made(_on_stock("/api/stock/on-hand.csv")), "hidden"),
    Row("GET", "/api/stock/reorder", "api", A.STOCK_READ, 200, made(_on_stock("/api/stock/reorder")), "hidden"),
    Row("GET", "/api/stock/reorder.csv", "api", A.STOCK_READ, 200, made(_on_stock("/api/stock/reorder.csv")), "hidden"),
    Row("GET", "/api/stock/transfers", "api", A.STOCK_READ, 200, made(_stock_transfer), "hidden"),
    Row("PUT", "/api/stock/thresholds", "api", A.STOCK_WRITE, 200, named("/api/stock/thresholds", body={"store_id": "{t.store}", "gtin": STOCK_GTIN, "low_at": 3}), 404),
    Row("GET", "/stock", "page", A.STOCK_READ, 200, made(_on_stock("/stock")), "hidden"),
    # catalog: the back office writes; registers read with their own assertion
    # a catalog file (issue 14): the guard and the tenant's claim come first; the table's JSON body is no CSV file (422)
    Row("POST", "/api/catalog/import", "api", A.CATALOG_WRITE, 422, named("/api/catalog/import?tenant_id={t.id}&preview=true", body="not a catalog file"), 403),
    Row("POST", "/api/catalog/items", "api", A.CATALOG_WRITE, 200, named("/api/catalog/items", body={"tenant_id": "{t.id}", "items": []}), 403),
    Row("GET", "/api/catalog/snapshot", "device", DEVICE, 401, fixed("/api/catalog/snapshot")),
    Row("GET", "/api/catalog/changes", "device", DEVICE, 401, fixed("/api/catalog/changes?since=0")),
    # loyalty (issue 14): balances for operators, adjustments for tenant admins, registers' cache
    Row("GET", "/api/loyalty/customers/{customer_id}", "api", A.CUSTOMERS_READ, 200, made(_on_loyalty("")), 404),
    Row("GET", "/api/loyalty/customers/{customer_id}/movements", "api", A.CUSTOMERS_READ, 200, made(_on_loyalty("/movements")), 404),
    Row("POST", "/api/loyalty/customers/{customer_id}/adjustments", "api", A.LOYALTY_ADJUST, 200, made(_on_loyalty("/adjustments", {"points": 5, "reason": "goodwill"})), 404),
    Row("GET", "/api/loyalty/device/customers/{customer_id}", "device", DEVICE, 401, fixed("/api/loyalty/device/customers/C5T0K8J2M9QXR7")),
    # provisioning
    Row("POST", "/api/enrolments", "api", A.ENROLMENTS_WRITE, 201, named("/api/enrolments", body={"tenant_id": "{t.id}", "store_id": "{t.store}", "created_by": "table"}), 403),
    Row("GET", "/api/enrolments", "api", A.ENROLMENTS_READ, 200, named("/api/enrolments", marker="{t.enrolment}"), "hidden"),
    Row("GET", "/api/enrolments/{enrolment_id}", "api", A.ENROLMENTS_READ, 200, named("/api/enrolments/{t.enrolment}"), 404),
    Row("POST", "/api/enrolments/{enrolment_id}/revoke", "api", A.ENROLMENTS_WRITE, 200, made(_revoke_enrolment), 404),
    Row("GET", "/api/enrolments/{enrolment_id}/qr.png", "api", A.ENROLMENTS_WRITE, 200, named("/api/enrolments/{t.enrolment}/qr.png"), 404),
    Row("GET", "/api/enrolments/{enrolment_id}/sheet.pdf", "api", A.ENROLMENTS_WRITE, 200, named("/api/enrolments/{t.enrolment}/sheet.pdf"), 404),
    Row("POST", "/api/enrol", "open", None, 404, made(_enrol)),  # an unknown token: token_unknown
    Row("POST", "/api/devices/{device_id}/decommission", "api", A.DEVICES_WRITE, 200, made(_decommission), 404),
    Row("POST", "/api/devices/{device_id}/replace", "api", A.DEVICES_WRITE, 201, named(DEVICES + "/replace", body={"created_by": "table"}), 404),
    Row("POST", "/api/devices/{device_id}/renew", "device", DEVICE, 401, named(DEVICES + "/renew", body={"csr_pem": "x"})),
    Row("GET", "/api/devices/{device_id}/certificates", "api", A.DEVICES_READ, 200, named(DEVICES + "/certificates"), 404),
    Row("GET", "/api/ca.pem", "open", None, 200, fixed("/api/ca.pem")),
    Row("GET", "/api/crl.pem", "open", None, 200, fixed("/api/crl.pem")),
    Row("POST", "/api/crl/refresh", "api", A.CA_WRITE, 200, fixed("/api/crl/refresh")),
    # device logs: uploads are the device's own (its assertion), reads an operator's
    Row("POST", "/api/devices/{device_id}/logs", "device", DEVICE, 401, named(DEVICES + "/logs", body={"text": "x"})),
    Row("GET", "/api/devices/{device_id}/logs", "api", A.DEVICES_READ, 200, named(DEVICES + "/logs"), 404),
    Row("GET", "/api/devices/{device_id}/logs/{log_id}", "api", A.DEVICES_READ, 404, named(DEVICES + "/logs/" + "0" * 32), 404),
    # operators
    Row("POST", "/api/auth/login", "open", None, 401, fixed("/api/auth/login", {"email": "nobody@acme.example", "password": "not the password"})),
    Row("POST", "/api/auth/logout", "api", AUTHENTICATED, 204, fixed("/api/auth/logout")),
    Row("GET", "/api/auth/me", "api", AUTHENTICATED, 200, fixed("/api/auth/me")),
    Row("GET", "/api/operators", "api", A.OPERATORS_READ, 200, named("/api/operators", marker="{t.victim}"), "hidden"),
    Row("POST", "/api/operators", "api", A.OPERATORS_WRITE, 201, made(_new_operator), 403),
    Row("GET", "/api/tokens", "api", A.TOKENS_WRITE, 200, fixed("/api/tokens")),
    Row("POST", "/api/tokens", "api", A.TOKENS_WRITE, 201, fixed("/api/tokens", {"name": "table", "scopes": ["read"]})),
    # an operator may revoke its own tokens only; an admin of the owner's tenant any of them
    Row("POST", "/api/tokens/{token_id}/revoke", "api", A.TOKENS_WRITE, 200, made(_revoke_token), 404, own={Role.OPERATOR: 404}),
    Row("GET", "/api/audit", "api", A.AUDIT_READ, 200, named("/api/audit?action=operators:write&limit=1000", marker="{t.victim}"), "hidden"),
    Row("GET", "/api/audit.csv", "api", A.AUDIT_READ, 200, named("/api/audit.csv?action=operators:write", marker="{t.victim}"), "hidden"),
    # console pages
    Row("GET", "/", "page", A.DEVICES_READ, 200, named("/", marker="{t.device}"), "hidden"),
    Row("GET", "/devices/{device_id}", "page", A.DEVICES_READ, 200, named("/devices/{t.device}"), 404),
    Row("GET", "/enrolments", "page", A.ENROLMENTS_READ, 200, named("/enrolments", marker="{t.enrolment}"), "hidden"),
    Row("GET", "/rollouts", "page", A.ROLLOUTS_READ, 200, made(_listed_rollout_page), "hidden"),
    Row("GET", "/rollouts/{rollout_id}", "page", A.ROLLOUTS_READ, 200, made(_a_rollout_page), 404),
    Row("GET", "/reports", "page", A.REPORTS_READ, 200, named("/reports", marker="{t.store}"), "hidden"),
    Row("GET", "/audit", "page", A.AUDIT_READ, 200, named("/audit?action=operators:write", marker="{t.victim}"), "hidden"),
    Row("GET", "/alerts", "page", A.ALERTS_READ, 200, made(_alerts_page), "hidden"),
    # releases (issue 11): platform-wide, published by platform admins (no trusted key here: 503)
    Row("POST", "/api/releases", "api", A.RELEASES_PUBLISH, 503, fixed("/api/releases")),
    Row("GET", "/api/releases", "api", A.ROLLOUTS_READ, 200, fixed("/api/releases")),
    Row("GET", "/api/releases/{version}", "api", A.ROLLOUTS_READ, 200, made(_get_release)),
    Row("GET", "/api/devices/{device_id}/releases/{version}/bundle", "device", DEVICE, 401, named(DEVICES + "/releases/0.0.1/bundle")),
    # rollouts (issue 11): another tenant's rollout is not found, nor listed
    Row("POST", "/api/rollouts", "api", A.ROLLOUTS_WRITE, 201, made(_new_rollout), 403),
    Row("GET", "/api/rollouts", "api", A.ROLLOUTS_READ, 200, made(_listed_rollout), "hidden"),
    Row("GET", "/api/rollouts/{rollout_id}", "api", A.ROLLOUTS_READ, 200, made(_a_rollout), 404),
    Row("POST", "/api/rollouts/{rollout_id}/start", "api", A.ROLLOUTS_WRITE, 200, _rollout_action("start"), 404),
    Row("POST", "/api/rollouts/{rollout_id}/pause", "api", A.ROLLOUTS_WRITE, 200, _rollout_action("pause", "start"), 404),
    Row("POST", "/api/rollouts/{rollout_id}/resume", "api", A.ROLLOUTS_WRITE, 200, _rollout_action("resume", "start", "pause"), 404),
    Row("POST", "/api/rollouts/{rollout_id}/abort", "api", A.ROLLOUTS_WRITE, 200, _rollout_action("abort"), 404),
    Row("POST", "/api/rollouts/{rollout_id}/retry", "api", A.ROLLOUTS_WRITE, 200, _rollout_action("retry", "start"), 404),
    Row("PUT", "/api/stores/{store_id}/maintenance-window", "api", A.STORES_WRITE, 204, named("/api/stores/{t.store}/maintenance-window", body={"maintenance_window": "22:00-06:00"}), 404),
    # configuration (issue 12): layers, groups and tags, effective documents, drift, staff
    Row("GET", "/api/config/schema", "api", A.CONFIG_READ, 200, fixed("/api/config/schema")),
    Row("GET", "/api/config/tenants/{tenant_id}/settings", "api", A.CONFIG_READ, 200, named(CONFIG + "/tenants/{t.id}/settings"), 404),
    Row("PUT", "/api/config/tenants/{tenant_id}/settings/{key}", "api", A.TENANT_CONFIG_WRITE, 200, named(CONFIG + "/tenants/{t.id}/settings/log_level", body={"value": "DEBUG"}), 404),
    Row("DELETE", "/api/config/tenants/{tenant_id}/settings/{key}", "api", A.TENANT_CONFIG_WRITE, 200, made(_config_delete("tenants", Layer.TENANT, lambda t: t.id)), 404),
    Row("GET", "/api/config/groups", "api", A.CONFIG_READ, 200, named(CONFIG + "/groups", marker="{t.group}"), "hidden"),
    Row("PUT", "/api/config/groups/{group_id}", "api", A.TENANT_CONFIG_WRITE, 200, named(CONFIG + "/groups/{t.group}", body={"tenant_id": "{t.id}", "tag": "city", "priority": 0}), 403),
    Row("GET", "/api/config/groups/{group_id}/settings", "api", A.CONFIG_READ, 200, named(CONFIG + "/groups/{t.group}/settings"), 404),
    Row("PUT", "/api/config/groups/{group_id}/settings/{key}", "api", A.TENANT_CONFIG_WRITE, 200, named(CONFIG + "/groups/{t.group}/settings/log_level", body={"value": "DEBUG"}), 404),
    Row("DELETE", "/api/config/groups/{group_id}/settings/{key}", "api", A.TENANT_CONFIG_WRITE, 200, made(_config_delete("groups", Layer.GROUP, lambda t: t.group)), 404),
    Row("GET", "/api/config/stores/{store_id}/settings", "api", A.CONFIG_READ, 200, named(CONFIG + "/stores/{t.store}/settings"), 404),
    Row("PUT", "/api/config/stores/{store_id}/settings/{key}", "api", A.CONFIG_WRITE, 200, named(CONFIG + "/stores/{t.store}/settings/log_level", body={"value": "DEBUG"}), 404),
    Row("DELETE", "/api/config/stores/{store_id}/settings/{key}", "api", A.CONFIG_WRITE, 200, made(_config_delete("stores", Layer.STORE, lambda t: t.store)), 404),
    Row("PUT", "/api/config/stores/{store_id}/tags", "api", A.TENANT_CONFIG_WRITE, 200, named(CONFIG + "/stores/{t.store}/tags", body={"tags": ["city"]}), 404),
    Row("GET", "/api/config/devices/{device_id}/settings", "api", A.CONFIG_READ, 200, named(CONFIG + "/devices/{t.device}/settings"), 404),
    Row("PUT", "/api/config/devices/{device_id}/settings/{key}", "api", A.CONFIG_WRITE, 200, named(CONFIG + "/devices/{t.device}/settings/log_level", body={"value": "DEBUG"}), 404),
    Row("DELETE", "/api/config/devices/{device_id}/settings/{key}", "api", A.CONFIG_WRITE, 200, made(_config_delete("devices", Layer.REGISTER, lambda t: t.device)), 404),
    Row("GET", "/api/config/devices/{device_id}", "api", A.CONFIG_READ, 200, named(CONFIG + "/devices/{t.device}"), 404),
    Row("GET", "/api/config/drift/counts", "api", A.CONFIG_READ, 200, fixed(CONFIG + "/drift/counts")),
    Row("GET", "/api/config/drift", "api", A.CONFIG_READ, 200, named(CONFIG + "/drift", marker="{t.device}"), "hidden"),
    Row("GET", "/api/config/stores/{store_id}/staff", "api", A.CONFIG_READ, 200, named(CONFIG + "/stores/{t.store}/staff"), 404),
    Row("POST", "/api/config/stores/{store_id}/staff", "api", A.STAFF_WRITE, 201, named(CONFIG + "/stores/{t.store}/staff", body={"name": "Kim", "role": "cashier", "pin": "4821"}), 404),
    Row("POST", "/api/config/stores/{store_id}/staff/{staff_id}/pin", "api", A.STAFF_WRITE, 200, named(CONFIG + "/stores/{t.store}/staff/{t.staff}/pin", body={"pin": "9921"}), 404),
    Row("DELETE", "/api/config/stores/{store_id}/staff/{staff_id}", "api", A.STAFF_WRITE, 204, made(_remove_staff), 404),
    # configuration history (issue 12): preview a change, a layer's versions, rollback, document versions
    Row("POST", "/api/config/tenants/{tenant_id}/settings/preview", "api", A.TENANT_CONFIG_WRITE, 200, named(CONFIG + "/tenants/{t.id}/settings/preview", body={"values": {"log_level": "DEBUG"}}), 404),
    Row("GET", "/api/config/tenants/{tenant_id}/settings/history", "api", A.CONFIG_READ, 200, named(CONFIG + "/tenants/{t.id}/settings/history"), 404),
    Row("POST", "/api/config/tenants/{tenant_id}/settings/rollback", "api", A.TENANT_CONFIG_WRITE, 200, made(_config_rollback("tenants", Layer.TENANT, lambda t: t.id)), 404),
    Row("POST", "/api/config/groups/{group_id}/settings/preview", "api", A.TENANT_CONFIG_WRITE, 200, named(CONFIG + "/groups/{t.group}/settings/preview", body={"values": {"log_level": "DEBUG"}}), 404),
    Row("GET", "/api/config/groups/{group_id}/settings/history", "api", A.CONFIG_READ, 200, named(CONFIG + "/groups/{t.group}/settings/history"), 404),
    Row("POST", "/api/config/groups/{group_id}/settings/rollback", "api", A.TENANT_CONFIG_WRITE, 200, made(_config_rollback("groups", Layer.GROUP, lambda t: t.group)), 404),
    Row("POST", "/api/config/stores/{store_id}/settings/preview", "api", A.CONFIG_WRITE, 200, named(CONFIG + "/stores/{t.store}/settings/preview", body={"values": {"log_level": "DEBUG"}}), 404),
    Row("GET", "/api/config/stores/{store_id}/settings/history", "api", A.CONFIG_READ, 200, named(CONFIG + "/stores/{t.store}/settings/history"), 404),
    Row("POST", "/api/config/stores/{store_id}/settings/rollback", "api", A.CONFIG_WRITE, 200, made(_config_rollback("stores", Layer.STORE, lambda t: t.store)), 404),
    Row("POST", "/api/config/devices/{device_id}/settings/preview", "api", A.CONFIG_WRITE, 200, named(CONFIG + "/devices/{t.device}/settings/preview", body={"values": {"log_level": "DEBUG"}}), 404),
    Row("GET", "/api/config/devices/{device_id}/settings/history", "api", A.CONFIG_READ, 200, named(CONFIG + "/devices/{t.device}/settings/history"), 404),
    Row("POST", "/api/config/devices/{device_id}/settings/rollback", "api", A.CONFIG_WRITE, 200, made(_config_rollback("devices", Layer.REGISTER, lambda t: t.device)), 404),
    Row("GET", "/api/config/devices/{device_id}/versions", "api", A.CONFIG_READ, 200, named(CONFIG + "/devices/{t.device}/versions"), 404),
    # configuration changes through waves (issue 12): start one on a layer, read, pause, resume, abort
    Row("POST", "/api/config/tenants/{tenant_id}/settings/{key}/waves", "api", A.TENANT_CONFIG_WRITE, 201, named(CONFIG + "/tenants/{t.id}/settings/log_level/waves", body={"value": "DEBUG", "health_s": 3600}), 404),
    Row("POST", "/api/config/groups/{group_id}/settings/{key}/waves", "api", A.TENANT_CONFIG_WRITE, 201, named(CONFIG + "/groups/{t.group}/settings/log_level/waves", body={"value": "DEBUG", "health_s": 3600}), 404),
    Row("POST", "/api/config/stores/{store_id}/settings/{key}/waves", "api", A.CONFIG_WRITE, 201, named(CONFIG + "/stores/{t.store}/settings/log_level/waves", body={"value": "DEBUG", "health_s": 3600}), 404),
    Row("POST", "/api/config/devices/{device_id}/settings/{key}/waves", "api", A.CONFIG_WRITE, 201, named(CONFIG + "/devices/{t.device}/settings/log_level/waves", body={"value": "DEBUG", "health_s": 3600}), 404),
    Row("GET", "/api/config/changes", "api", A.CONFIG_READ, 200, made(_on_config_change("list")), "hidden"),
    Row("GET", "/api/config/changes/{change_id}", "api", A.CONFIG_READ, 200, made(_on_config_change()), 404),
    Row("POST", "/api/config/changes/{change_id}/pause", "api", A.CONFIG_WRITE, 200, made(_on_config_change("/pause")), 404),
    Row("POST", "/api/config/changes/{change_id}/resume", "api", A.CONFIG_WRITE, 200, made(_on_config_change("/resume", "pause")), 404),
    Row("POST", "/api/config/changes/{change_id}/abort", "api", A.CONFIG_WRITE, 200, made(_on_config_change("/abort")), 404),
    Row("GET", "/config", "page", A.CONFIG_READ, 200, named("/config?layer=store&target={t.store}"), 404),
    Row("GET", "/config/devices/{device_id}", "page", A.CONFIG_READ, 200, named("/config/devices/{t.device}"), 404),
    Row("GET", "/config/stores/{store_id}/staff", "page", A.CONFIG_READ, 200, named("/config/stores/{t.store}/staff"), 404),
    # customers (issue 14): personal data for operators and admins, GDPR export and erasure for
    # tenant admins; another tenant's customer is not found; registers search with their assertion
    Row("POST", "/api/customers", "api", A.CUSTOMERS_WRITE, 201, named(CUSTOMERS, body={"name": "Zed", "tenant_id": "{t.id}"}), 403),
    Row("GET", "/api/customers", "api", A.CUSTOMERS_READ, 200, made(_listed_customer), "hidden"),
    Row("POST", "/api/customers/search", "api", A.CUSTOMERS_READ, 200, made(_searched_customer), 403),
    Row("GET", "/api/customers/{customer_id}", "api", A.CUSTOMERS_READ, 200, _on_customer(""), 404),
    Row("PATCH", "/api/customers/{customer_id}", "api", A.CUSTOMERS_WRITE, 200, _on_customer("", {"phone": "+41 79 000 11 22"}), 404),
    Row("PUT", "/api/customers/{customer_id}/consent", "api", A.CUSTOMERS_WRITE, 200, _on_customer("/consent", {"email_receipts": True}), 404),
    Row("GET", "/api/customers/{customer_id}/card.png", "api", A.CUSTOMERS_READ, 200, _on_customer("/card.png"), 404),
    Row("GET", "/api/customers/{customer_id}/export", "api", A.CUSTOMERS_EXPORT, 200, _on_customer("/export"), 404),
    Row("POST", "/api/customers/{customer_id}/erase", "api", A.CUSTOMERS_ERASE, 200, _on_customer("/erase"), 404),
    Row("POST", "/api/customers/lookup", "device", DEVICE, 401, fixed(CUSTOMERS + "/lookup", body={"q": "zed"})),
    Row("GET", "/customers", "page", A.CUSTOMERS_READ, 200, made(_customers_page), "hidden"),
    Row("POST", "/customers", "page", A.CUSTOMERS_READ, 200, fixed("/customers", form={"q": "zed"})),
    Row("GET", "/customers/{customer_id}", "page", A.CUSTOMERS_READ, 200, _on_customer("", base="/customers"), 404),
    # login pages, health, documentation: open
    Row("GET", "/login", "open", None, 200, fixed("/login")),
    Row("POST", "/login", "open", None, 401, fixed("/login", form={"email": "x@acme.example", "password": "p"})),
    Row("GET", "/login/totp", "open", None, 303, fixed("/login/totp")),
    Row("POST", "/login/totp", "open", None, 303, fixed("/login/totp", form={"code": "123456"})),
    Row("POST", "/logout", "open", None, 303, fixed("/logout")),
    Row("GET", "/healthz", "open", None, 200, fixed("/healthz")),
    Row("GET", "/readyz", "open", None, 200, fixed("/readyz")),
    # the API's description: any operator or token, like /api/auth/me (unauthenticated: 401)
    Row("GET", "/openapi.json", "api", AUTHENTICATED, 200, fixed("/openapi.json")),
    Row("GET", "/docs", "api", AUTHENTICATED, 200, fixed("/docs")),
    # mounts: /metrics to the monitoring networks (loopback here), Swagger UI's files
    Row("MOUNT", "/metrics", "open", None, 200, fixed("/metrics/")),
    Row("MOUNT", "/docs/swagger-ui", "open", None, 200, fixed("/docs/swagger-ui/swagger-ui.css")),
)  # fmt: skip
ROWS = {row.key: row for row in TABLE}
GUARDED = [row for row in TABLE if row.kind in ("api", "page")]


def _marks(row: Row) -> list[pytest.MarkDecorator]:
    """Another engineer's route in progress: expected to fail until it lands (then drop
    ``pending``); not strict, as some of its cases already hold."""
    return [pytest.mark.xfail(strict=False, reason=row.pending)] if row.pending else []


# -- what each case must answer ---------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """The status, and whether the tenant's marker shows in the body (lists and pages)."""

    status: int
    shows: bool


def allowed(role: Role, guard: str) -> bool:
    """What the policy table says: ``auth:self`` routes are any operator's."""
    return guard == AUTHENTICATED or Action(guard) in ROLE_ACTIONS[role]


def expect(row: Row, role: Role, where: str) -> Expect:
    assert row.guard is not None
    hidden = row.foreign == "hidden"
    if not allowed(role, row.guard):
        return Expect(403, shows=not hidden)
    if role is Role.PLATFORM_ADMIN or where == OWN:
        return Expect(row.own.get(role, row.ok), shows=True)
    if row.foreign == "hidden":
        return Expect(row.ok, shows=False)
    assert row.foreign != "n/a"
    return Expect(row.foreign, shows=True)


def role_cases() -> Iterator[Any]:
    for row in GUARDED:
        places = (OWN,) if row.foreign == "n/a" else (OWN, FOREIGN)
        for role, where in itertools.product(PRINCIPALS, places):
            yield pytest.param(
                row,
                role,
                where,
                expect(row, role, where),
                id=f"{row.key} {role.value} {'own' if where == OWN else 'foreign'}",
                marks=_marks(row),
            )


def _rows(rows: list[Row]) -> list[Any]:
    return [pytest.param(row, id=row.key, marks=_marks(row)) for row in rows]


#: What a guarded route answers to no (or expired) credentials: an API 401, a page the login.
UNAUTHENTICATED = {"api": 401, "page": 303}


# -- the served control plane with both tenants -------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def world_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """The store of the module's world: a SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('access') / 'cloud.db'}"
        return
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(world_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """Two tenants, each with a store, a reporting device, an enrolment, a command, a sale, a
    stock count and an operator; one operator of each role in the own tenant."""
    directory = tmp_path_factory.mktemp("access-world")
    broker = Mosquitto(directory)
    broker.start()
    try:
        async with served_control_plane(database_url=world_url, broker_url=broker.url) as served:
            yield await _populate(served, directory, broker)
    finally:
        broker.kill()


async def _populate(served: ServedControlPlane, directory: Path, broker: Mosquitto) -> World:
    app = served.app
    settings = ProvisioningSettings(
        demo=True,
        directory=directory / "ca",
        public_url=served.url,
        device_broker_url=broker.url,
        crl_file=directory / "crl.pem",
    )
    app.state.provisioning_settings = settings
    authority = FleetAuthority(settings=settings, engine=app.state.engine)
    app.state.provisioning = authority
    engine: AsyncEngine = app.state.engine
    # made now (not at the first request) so the rate-limit test can reach its buckets
    app.state.operators = Gatekeeper(engine=engine, settings=app.state.operator_settings)
    await wait_until(app.state.ingest.connected.is_set, what="the ingest's broker")
    tenants = {}
    for tenant in (OWN, FOREIGN):
        tenants[tenant] = await _tenant(engine, authority, app, tenant)
    passwords = Passwords(operator_settings())
    ids = {}
    for role in PRINCIPALS:
        view, _ = await operators.create_operator(
            engine,
            passwords=passwords,
            by=None,
            email=email_of(role),
            role=role,
            tenant_id=None if role is Role.PLATFORM_ADMIN else OWN,
            now=_now(),
        )
        ids[role] = view.id
    csr = DeviceIdentity(directory / "appliance").certificate_request().decode()
    return World(served=served, authority=authority, operator_ids=ids, tenants=tenants, csr=csr)


async def _tenant(
    engine: AsyncEngine, authority: FleetAuthority, app: FastAPI, tenant: str
) -> Tenant:
    store, device = f"{tenant}-01", f"{tenant}-01-r1"
    await registry.create_tenant(engine, tenant_id=tenant, name=tenant.title())
    await registry.create_store(engine, store_id=store, tenant_id=tenant, name="High Street")
    await registry.register_device(engine, device_id=device, store_id=store)
    await apply_state(engine, device, State(app_release="2026.1"))
    enrolment = await provisioning.create_enrolment(
        engine=engine, authority=authority, tenant_id=tenant, store_id=store, created_by="seed"
    )
    command = await commands.send_command(
        engine, publisher=app.state.ingest, device_id=device, name="printer.test_page", args={}
    )
    sale, count = f"sale-{tenant}", f"count-{tenant}"
    # as the ingest stores them: the sale's record (the reports and the overview read rollups of
    # the journal) beside its sales row, then a stock count
    journal_of = Seeder(engine, tenant)
    body = sale_body(sale, receipt=1, cashier="E01", shift="sh1", rng=random.Random(1), at="")
    await journal_of.record(device_id=device, kind="sale.completed", ts=_now(), body=body)
    async with engine.begin() as conn:
        await conn.execute(
            insert(sales).values(
                device_id=device, seq=1, sale_id=sale, tenant_id=tenant, store_id=store,
                receipt_no=1, currency="EUR", total_minor=body["total_minor"], ts=_now(),
            )
        )  # fmt: skip
    await journal_of.record(
        device_id=device, kind="stock_count.committed", ts=_now(), body={"session_id": count}
    )
    group, staff_id = await _configuration(engine, tenant, store, device)
    victim = f"victim@{tenant}.example"
    await operators.create_operator(
        engine,
        passwords=Passwords(operator_settings()),
        by=None,
        email=victim,
        role=Role.OPERATOR,
        tenant_id=tenant,
        now=_now(),
    )
    return Tenant(
        id=tenant,
        store=store,
        device=device,
        enrolment=enrolment.view.id,
        command=command.id,
        sale=sale,
        count=count,
        victim=victim,
        group=group,
        staff=staff_id,
    )


async def _send(world: World, row: Row, call: Call, headers: Mapping[str, str]) -> httpx.Response:
    method = "GET" if row.method == "MOUNT" else row.method
    sent = dict(headers)
    if method not in UNSAFE:
        sent.pop("X-CSRF-Token", None)
    async with world.served.anonymous(timeout=30) as client:
        return await client.request(method, call.path, json=call.body, data=call.form, headers=sent)


# -- the tests ----------------------------------------------------------------------------------


async def test_every_served_route_is_in_the_table(world: World) -> None:
    served = set()
    for route in routes(world.app):
        methods = sorted(set(route.methods or ()) - {"HEAD"}) or ["MOUNT"]
        path = (route.path_format or "").removesuffix("/{path}")
        served |= {f"{method} {path}" for method in methods}
    pending = {row.key for row in TABLE if row.pending}

    assert served - set(ROWS) == set(), "routes without a row: give each its guard and answers"
    assert set(ROWS) - served - pending == set(), "rows of routes the app no longer serves"


@pytest.mark.parametrize("row", _rows([row for row in TABLE if row.method != "MOUNT"]))
async def test_each_route_is_guarded_as_the_table_says(world: World, row: Row) -> None:
    [route] = [
        r
        for r in routes(world.app)
        if r.path_format == row.path and row.method in (r.methods or ())
    ]
    guard = guard_of(route)

    assert guard == (None if row.guard == DEVICE else row.guard)


@pytest.mark.parametrize(("row", "role", "where", "expected"), list(role_cases()))
async def test_role_and_tenant(
    world: World, row: Row, role: Role, where: str, expected: Expect
) -> None:
    call = await row.build(world, world.tenants[where])

    answer = await _send(world, row, call, await world.session(role))

    assert answer.status_code == expected.status, answer.text[:500]
    assert (call.marker in answer.text) is expected.shows, answer.text[:500]


@pytest.mark.parametrize("row", _rows(GUARDED))
async def test_no_credentials(world: World, row: Row) -> None:
    answer = await _send(world, row, await row.build(world, world.tenants[OWN]), {})

    assert answer.status_code == UNAUTHENTICATED[row.kind], answer.text[:500]
    assert answer.headers.get("location", "/login?next=/").startswith("/login?next=/")


@pytest.mark.parametrize("row", _rows(GUARDED))
async def test_expired_session(world: World, row: Row) -> None:
    headers = await world.session(Role.PLATFORM_ADMIN, expired=True)

    answer = await _send(world, row, await row.build(world, world.tenants[OWN]), headers)

    assert answer.status_code == UNAUTHENTICATED[row.kind], answer.text[:500]


def _scope_without(guard: str) -> str:
    """A scope that does not allow ``guard``'s action (every token allows ``auth:self``)."""
    lacking = [s for s in Scope if guard == AUTHENTICATED or Action(guard) not in SCOPE_ACTIONS[s]]
    return lacking[0].value


@pytest.mark.parametrize("row", _rows(GUARDED))
async def test_token_without_the_scope(world: World, row: Row) -> None:
    assert row.guard is not None
    headers = await world.token(Role.PLATFORM_ADMIN, [_scope_without(row.guard)])

    answer = await _send(world, row, await row.build(world, world.tenants[OWN]), headers)

    assert answer.status_code == (row.ok if row.guard == AUTHENTICATED else 403), answer.text[:500]


@pytest.mark.parametrize("row", _rows([row for row in GUARDED if row.method in UNSAFE]))
async def test_session_without_csrf(world: World, row: Row) -> None:
    headers = await world.session(Role.PLATFORM_ADMIN)
    del headers["X-CSRF-Token"]

    answer = await _send(world, row, await row.build(world, world.tenants[OWN]), headers)

    assert (answer.status_code, answer.json()["reason"]) == (403, "csrf_refused")


@pytest.mark.parametrize("row", _rows([row for row in TABLE if row.kind in ("open", "device")]))
async def test_open_and_device_routes_answer_without_operator_credentials(
    world: World, row: Row
) -> None:
    answer = await _send(world, row, await row.build(world, world.tenants[OWN]), {})

    assert answer.status_code == row.ok, answer.text[:500]


async def test_logout_form_without_its_csrf_token_is_refused(world: World) -> None:
    headers = await world.session(Role.VIEWER)
    del headers["X-CSRF-Token"]

    answer = await _send(world, ROWS["POST /logout"], Call("/logout"), headers)

    assert answer.status_code == 403


async def test_a_client_over_its_rate_is_answered_429_with_retry_after(world: World) -> None:
    gatekeeper = world.app.state.operators
    generous = gatekeeper.api_buckets
    gatekeeper.api_buckets = TokenBuckets(rate=2)
    try:
        headers = await world.session(Role.VIEWER)
        answers = [
            await _send(world, ROWS["GET /api/auth/me"], Call("/api/auth/me"), headers)
            for _ in range(3)
        ]
    finally:
        gatekeeper.api_buckets = generous

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert answers[2].json()["reason"] == "rate_limited"


async def test_a_foreign_host_header_is_refused(world: World) -> None:
    async with world.served.client(timeout=30) as client:
        answer = await client.get("/api/auth/me", headers={"Host": "rebound.example"})

    assert answer.status_code == 400


#: Each button that changes something, the page it is on and the action pressing it needs.
BUTTONS = (
    ("/devices/{t.device}", 'id="print-test-page"', A.COMMANDS_SEND),
    ("/devices/{t.device}", 'id="open-drawer"', A.COMMANDS_SEND),
    ("/alerts", 'id="save-channel"', A.NOTIFICATIONS_MANAGE),
    ("/enrolments", 'id="create-enrolment"', A.ENROLMENTS_WRITE),
    ("/enrolments", 'class="revoke"', A.ENROLMENTS_WRITE),
    ("/config?layer=store&target={t.store}", 'id="save-setting"', A.CONFIG_WRITE),
    ("/config?layer=tenant&target={t.id}", 'id="save-setting"', A.TENANT_CONFIG_WRITE),
    ("/config?layer=store&target={t.store}", 'id="preview-setting"', A.CONFIG_WRITE),
    ("/config?layer=tenant&target={t.id}", 'class="restore-version"', A.TENANT_CONFIG_WRITE),
    ("/config/stores/{t.store}/staff", 'id="add-staff"', A.STAFF_WRITE),
    ("/", 'id="logout-button"', None),  # everyone who logged in may log out
)


def _button_cases() -> Iterator[Any]:
    for (page, button, action), role in itertools.product(BUTTONS, PRINCIPALS):
        shown = action is None or action in ROLE_ACTIONS[role]
        yield pytest.param(page, button, role, shown, id=f"{page} {button} {role.value}")


@pytest.mark.parametrize(("page", "button", "role", "shown"), list(_button_cases()))
async def test_a_page_renders_a_button_only_for_who_may_press_it(
    world: World, page: str, button: str, role: Role, shown: bool
) -> None:
    call = Call(page.format(t=world.tenants[OWN]))

    answer = await _send(world, ROWS["GET /"], call, await world.session(role))

    assert answer.status_code == 200
    assert (button in answer.text) is shown
