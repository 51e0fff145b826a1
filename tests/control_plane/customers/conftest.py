"""One served control plane for a test module of customers: two tenants, a register in each,
operators of every role, an SMTP server the receipt mailer sends to (PostgreSQL, real broker)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices import service as registry
from control_plane.operators.principal import Role
from edge.enrolment.device_auth import DeviceAuth
from provisioning.ca import CertificateAuthority
from tests.control_plane.alerts.receivers import SmtpServer, smtp_server
from tests.control_plane.devices.device_harness import issued_identity
from tests.harness.control_plane import ServedControlPlane, Session, served_control_plane
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database

OWN, FOREIGN = "acme", "globex"


@dataclass
class Shop:
    """The served control plane, its SMTP server, and who acts on it."""

    served: ServedControlPlane
    smtp: SmtpServer
    sessions: dict[tuple[str, Role], Session]
    registers: dict[str, DeviceAuth]
    database_url: str

    @property
    def engine(self) -> AsyncEngine:
        engine: AsyncEngine = self.served.app.state.engine
        return engine

    def as_(self, role: Role, tenant: str = OWN) -> httpx.AsyncClient:
        """A client logged in as ``role`` of ``tenant`` (session cookie and CSRF token)."""
        session = self.sessions[(tenant, role)]
        headers = {"Cookie": f"sf_session={session.secret}", "X-CSRF-Token": session.csrf}
        return self.served.anonymous(headers=headers)

    def register(self, tenant: str = OWN) -> httpx.AsyncClient:
        """A client that signs every request as ``tenant``'s register."""
        return self.served.anonymous(auth=self.registers[tenant])


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shop(
    tmp_path_factory: pytest.TempPathFactory, fleet_ca: CertificateAuthority
) -> AsyncIterator[Shop]:
    directory = tmp_path_factory.mktemp("cust")
    url = await create_pg_database()
    broker = Mosquitto(directory)
    broker.start()
    try:
        async with smtp_server() as smtp:
            with pytest.MonkeyPatch.context() as env:
                env.setenv("STOREFLEET_CP_NOTIFY_SMTP_HOST", "127.0.0.1")
                env.setenv("STOREFLEET_CP_NOTIFY_SMTP_PORT", str(smtp.port))
                env.setenv("STOREFLEET_CP_NOTIFY_SMTP_STARTTLS", "0")
                env.setenv("STOREFLEET_CP_CUSTOMERS_RECEIPTS_POLL_S", "0.1")
                async with served_control_plane(database_url=url, broker_url=broker.url) as served:
                    yield await _populate(served, smtp, directory, fleet_ca, url)
    finally:
        broker.kill()
        await drop_pg_database(url)


async def _populate(
    served: ServedControlPlane,
    smtp: SmtpServer,
    directory: Path,
    ca: CertificateAuthority,
    url: str,
) -> Shop:
    engine: AsyncEngine = served.app.state.engine
    sessions: dict[tuple[str, Role], Session] = {}
    registers = {}
    for tenant in (OWN, FOREIGN):
        await registry.create_tenant(engine, tenant_id=tenant, name=tenant.title())
        store = f"{tenant}-01"
        await registry.create_store(engine, store_id=store, tenant_id=tenant, name="High Street")
        device = f"{tenant}-01-r1"
        await registry.register_device(engine, device_id=device, store_id=store)
        await issued_identity(engine, ca, device_id=device, identity_dir=directory / tenant)
        registers[tenant] = DeviceAuth(directory / tenant)
        roles = (Role.TENANT_ADMIN, Role.OPERATOR, Role.VIEWER) if tenant == OWN else (
            Role.TENANT_ADMIN,
        )  # fmt: skip
        for role in roles:
            sessions[(tenant, role)] = await served.log_in(
                f"{role.value}@{tenant}.example", role, tenant
            )
    return Shop(served=served, smtp=smtp, sessions=sessions, registers=registers, database_url=url)


async def create(shop: Shop, **fields: Any) -> dict[str, Any]:
    """A customer of the own tenant, created by its operator through the API."""
    async with shop.as_(Role.OPERATOR) as client:
        answer = await client.post("/api/customers", json=fields)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created
