"""The whole control plane app (API, console, ingest) served by uvicorn inside the test's loop,
with a bootstrap platform admin whose API token the test's clients send.

Every operator route is guarded (issue 9), so a test talks to the API as someone: `bootstrap_admin`
makes a platform admin through the operators' service layer (as ``storefleet operators create``
does) and an API token with every scope; `ServedControlPlane.client` is an httpx client that sends
it. `ServedControlPlane.anonymous` is a client without credentials, for what must answer anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.app import create_app
from control_plane.db.engine import make_engine, migrate
from control_plane.operators import service, totp
from control_plane.operators.gatekeeper import wall_clock_ms
from control_plane.operators.passwords import Passwords
from control_plane.operators.policy import Scope
from control_plane.operators.principal import Role
from control_plane.operators.settings import OperatorSettings
from control_plane.operators.tables import operators
from control_plane.provisioning.settings import ProvisioningSettings
from control_plane.settings import ControlPlaneSettings
from tests.harness.services import create_pg_database, drop_pg_database, free_port

ADMIN_EMAIL = "root@storefleet.test"

#: The tests' operator settings: argon2 at its cheapest (bench/trust.py measures the real cost)
#: and a rate limit no test reaches by polling (tests/control_plane/test_access_table.py checks
#: the limit itself on its own app).
TEST_OPERATOR_SETTINGS = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 1024,
    "argon2_parallelism": 1,
    "api_rate_per_minute": 1_000_000,
    "login_rate_per_minute": 1_000_000,
}

#: How long the harness's clients wait for an answer (httpx's default is 5 s). On a loaded test
#: machine (four xdist workers on two cores) a login's argon2 check, an upload or a first request
#: that migrates can take longer, and a client that gives up is a failure of the test, not of the
#: control plane.
ANSWER_WAIT_S = 30.0


def operator_settings(**overrides: Any) -> OperatorSettings:
    """The tests' operator settings with ``overrides``."""
    return OperatorSettings(**(TEST_OPERATOR_SETTINGS | overrides))


async def bootstrap_admin(database_url: str, *, email: str = ADMIN_EMAIL) -> str:
    """Migrate the store, create a platform admin and return an API token with every scope."""
    engine = make_engine(database_url)
    try:
        await migrate(engine)
        settings = operator_settings()
        await service.create_operator(
            engine,
            passwords=Passwords(settings),
            by=None,
            email=email,
            role=Role.PLATFORM_ADMIN,
            tenant_id=None,
            now=wall_clock_ms(),
        )
        _, secret = await service.create_token(
            engine,
            settings=settings,
            owner=await service.find_operator(engine, email=email),
            actor=service.cli_actor(),
            name="test harness",
            scopes=[scope.value for scope in Scope],
            now=wall_clock_ms(),
        )
    finally:
        await engine.dispose()
    return secret


def bearer(token: str) -> dict[str, str]:
    """The header that authenticates a request with an API token."""
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Session:
    """An operator logged in through the API: the session cookie and its CSRF token."""

    email: str
    secret: str
    csrf: str

    def cookie(self, url: str) -> dict[str, Any]:
        """The session as a Playwright cookie for ``url`` (a browser that logged in)."""
        return {"name": "sf_session", "value": self.secret, "url": url}


async def log_in(
    url: str, engine: AsyncEngine, *, email: str, role: Role, tenant_id: str | None = None
) -> Session:
    """Create an operator through the service layer and log them in through the API.

    An admin's authenticator is set up in the store first (the test plays it), so the login
    sends the current TOTP code like a real admin's client would.
    """
    settings = operator_settings()
    _, password = await service.create_operator(
        engine,
        passwords=Passwords(settings),
        by=None,
        email=email,
        role=role,
        tenant_id=tenant_id,
        now=wall_clock_ms(),
    )
    body: dict[str, Any] = {"email": email, "password": password}
    if role.needs_totp:
        seed = totp.new_secret()
        async with engine.begin() as conn:
            await conn.execute(
                update(operators)
                .where(operators.c.email == email)
                .values(totp_secret=seed, totp_confirmed_at=wall_clock_ms())
            )
        body["totp"] = totp.code_at(seed, now_ms=wall_clock_ms())
    async with httpx.AsyncClient(base_url=url, timeout=ANSWER_WAIT_S) as client:
        answer = await client.post("/api/auth/login", json=body)
        assert answer.status_code == 200, answer.text
        return Session(
            email=email, secret=client.cookies["sf_session"], csrf=answer.json()["csrf_token"]
        )


@dataclass(frozen=True)
class ServedControlPlane:
    """A running control plane: its URL, the app, and the bootstrap admin's API token."""

    url: str
    app: FastAPI
    admin_token: str

    def client(self, **options: Any) -> httpx.AsyncClient:
        """An httpx client on the control plane that authenticates as the platform admin."""
        headers = bearer(self.admin_token) | dict(options.pop("headers", {}))
        return self.anonymous(headers=headers, **options)

    def anonymous(self, **options: Any) -> httpx.AsyncClient:
        """An httpx client without credentials (waits `ANSWER_WAIT_S` for an answer)."""
        options.setdefault("timeout", ANSWER_WAIT_S)
        return httpx.AsyncClient(base_url=self.url, **options)

    async def log_in(self, email: str, role: Role, tenant_id: str | None = None) -> Session:
        """A new operator of ``role``, logged in (see `log_in`)."""
        engine: AsyncEngine = self.app.state.engine
        return await log_in(self.url, engine, email=email, role=role, tenant_id=tenant_id)


@asynccontextmanager
async def serving(
    app: FastAPI, *, port: int, host: str = "127.0.0.1", **options: Any
) -> AsyncIterator[None]:
    """Serve ``app`` with uvicorn in this loop until the block ends (lifespan included);
    ``options`` are more of uvicorn's (TLS files, proxy headers)."""
    config = uvicorn.Config(app, **({"host": host, "port": port} | options), log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="control-plane")
    async with asyncio.timeout(20):
        while not server.started:
            assert not task.done(), "control plane exited at start"
            await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def served_control_plane(
    *,
    database_url: str,
    broker_url: str,
    operators: OperatorSettings | None = None,
    provisioning: ProvisioningSettings | None = None,
    **settings: Any,
) -> AsyncIterator[ServedControlPlane]:
    """A running control plane with a bootstrap admin; stopped cleanly afterwards.

    ``settings`` are more `ControlPlaneSettings` fields; ``operators`` replaces the tests'
    operator settings; ``provisioning`` is the CA's (set before the app starts, as ``serve``
    does, so its public URL's host is among the names answered).
    """
    port = free_port()
    token = await bootstrap_admin(database_url)
    served = ControlPlaneSettings(
        database_url=database_url, broker_url=broker_url, port=port, **settings
    )
    app = create_app(served)
    app.state.operator_settings = operators or operator_settings()
    if provisioning is not None:
        app.state.provisioning_settings = provisioning
    scheme = "https" if served.tls_cert else "http"
    async with serving(app, **served.uvicorn_options()):  # as `storefleet serve` runs it
        yield ServedControlPlane(url=f"{scheme}://127.0.0.1:{port}", app=app, admin_token=token)


@contextmanager
def migrated_store(kind: str, directory: Path) -> Iterator[str]:
    """A migrated cloud store for a module's tests, outside any event loop: an SQLite file in
    ``directory`` or a fresh PostgreSQL database (dropped after), by ``kind``."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / 'cloud.db'}"
    else:
        url = asyncio.run(create_pg_database())

    async def prepare() -> None:
        engine = make_engine(url)
        await migrate(engine)
        await engine.dispose()

    asyncio.run(prepare())
    try:
        yield url
    finally:
        if kind != "sqlite":
            asyncio.run(drop_pg_database(url))
