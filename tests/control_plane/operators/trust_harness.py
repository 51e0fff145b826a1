"""The operators domain on a real SQL store, served in-process: an app with the operators router
and one probe route per policy action, a settable clock, and helpers that log in as each role.

Imported by the operators tests and bench/trust.py (not a conftest, so both can use it).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, FastAPI
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.engine import make_engine, migrate
from control_plane.devices.tables import tenants
from control_plane.operators import service, totp
from control_plane.operators.gatekeeper import Gatekeeper
from control_plane.operators.policy import Action, require
from control_plane.operators.principal import Principal, Role
from control_plane.operators.router import router as operators_router
from control_plane.operators.sessions import csrf_token
from control_plane.operators.settings import OperatorSettings
from control_plane.operators.tables import audit_log, operators
from control_plane.problems import install_problem_handlers

TENANT, OTHER_TENANT = "acme", "globex"
START_MS = 1_800_000_000_000
#: argon2 at its cheapest: these tests are about the rules, bench/trust.py measures the cost
CHEAP = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}


class Clock:
    """Wall clock (ms) and monotonic clock (s) that move only when a test says so."""

    def __init__(self) -> None:
        self.ms = START_MS
        self.mono = 1000.0

    def now(self) -> int:
        return self.ms

    def monotonic(self) -> float:
        return self.mono

    def advance(self, *, seconds: float) -> None:
        self.ms += round(seconds * 1000)
        self.mono += seconds


def probe_router() -> APIRouter:
    """GET and POST /probe/<action> for every action: 200 with the principal when allowed."""
    router = APIRouter(prefix="/probe")
    for action in Action:

        def make(act: Action) -> None:
            async def probe(principal: Principal) -> dict[str, Any]:
                return {
                    "action": act.value,
                    "operator_id": principal.operator_id,
                    "role": principal.role.value,
                    "tenant_id": principal.tenant_id,
                    "via": principal.via,
                }

            # the annotation names this loop's action, so it is an object, not a string
            probe.__annotations__["principal"] = Annotated[Principal, require(act)]
            router.add_api_route(f"/{act.value}", probe, methods=["GET", "POST"], name=act.value)

        make(action)
    return router


def build_app(gatekeeper: Gatekeeper) -> FastAPI:
    """The operators router, the probes, problem-details answers; no lifespan needed."""
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(operators_router)
    app.include_router(probe_router())

    @app.get("/unguarded")
    async def unguarded() -> dict[str, bool]:
        return {"ok": True}

    app.state.engine = gatekeeper.engine
    app.state.operators = gatekeeper
    return app


@dataclass
class Login:
    """A logged-in client: the session cookie lives in ``client``."""

    client: httpx.AsyncClient
    csrf: str
    operator_id: str


@dataclass
class Trust:
    """The operators domain on one store."""

    engine: AsyncEngine
    gatekeeper: Gatekeeper
    clock: Clock
    app: FastAPI
    passwords: dict[str, str] = field(default_factory=dict)
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, *, base_url: str = "http://testserver") -> httpx.AsyncClient:
        """A fresh client (own cookie jar) on the in-process app."""
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=base_url)
        self._clients.append(client)
        return client

    async def operator(
        self, email: str, role: Role, tenant_id: str | None = TENANT
    ) -> service.OperatorView:
        """Create an operator (as the CLI does); its password is kept in ``passwords``."""
        view, password = await service.create_operator(
            self.engine,
            passwords=self.gatekeeper.passwords,
            by=None,
            email=email,
            role=role,
            tenant_id=None if role is Role.PLATFORM_ADMIN else tenant_id,
            now=self.clock.now(),
        )
        self.passwords[view.email] = password
        return view

    async def api_token(
        self, email: str, scopes: list[str], *, days: int | None = None
    ) -> tuple[str, str]:
        """A token of ``email`` made as the CLI makes it (no request spent): (id, secret)."""
        owner = await service.find_operator(self.engine, email=email)
        view, secret = await service.create_token(
            self.engine,
            settings=self.gatekeeper.settings,
            owner=owner,
            actor=service.cli_actor(),
            name="test",
            scopes=scopes,
            days=days,
            now=self.clock.now(),
        )
        return view.id, secret

    async def login(self, email: str, *, base_url: str = "http://testserver") -> Login:
        """Log a non-admin in through the JSON API."""
        client = self.client(base_url=base_url)
        response = await client.post(
            "/api/auth/login", json={"email": email, "password": self.passwords[email]}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return Login(client, body["csrf_token"], body["principal"]["operator_id"])

    async def admin_login(self, email: str) -> Login:
        """Log an admin in through the console pages, enrolling TOTP on the first login."""
        client = self.client()
        page = await client.get("/login")
        nonce = client.cookies["sf_login_csrf"]
        assert page.status_code == 200
        response = await client.post(
            "/login",
            data={"email": email, "password": self.passwords[email], "csrf_token": nonce},
        )
        assert response.status_code == 303, response.text
        csrf = _csrf_from(await client.get("/login/totp"))  # makes the seed on first login
        seed = await self.totp_seed(email)
        response = await client.post(
            "/login/totp",
            data={"code": totp.code_at(seed, now_ms=self.clock.now()), "csrf_token": csrf},
        )
        assert response.status_code == 303, response.text
        me = await client.get("/api/auth/me")
        assert me.status_code == 200, me.text
        return Login(client, csrf_token(client.cookies["sf_session"]), me.json()["operator_id"])

    async def totp_seed(self, email: str) -> str:
        """The admin's TOTP seed as the store holds it (the test plays the authenticator)."""
        async with self.engine.connect() as conn:
            seed = await conn.scalar(
                select(operators.c.totp_secret).where(operators.c.email == email)
            )
        assert seed is not None, f"{email} has no TOTP seed yet"
        return str(seed)

    async def audit(self, **where: Any) -> list[dict[str, Any]]:
        """Audit entries (oldest first) whose columns equal ``where``."""
        query = select(audit_log).order_by(audit_log.c.id)
        for column, value in where.items():
            query = query.where(audit_log.c[column] == value)
        async with self.engine.connect() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings()]

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()


def _csrf_from(page: httpx.Response) -> str:
    marker = 'name="csrf_token" value="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


async def seed_tenants(engine: AsyncEngine) -> None:
    """The two tenants the tests isolate from each other."""
    async with engine.begin() as conn:
        for tenant in (TENANT, OTHER_TENANT):
            await conn.execute(
                insert(tenants).values(id=tenant, name=tenant.title(), created_at=START_MS)
            )


@asynccontextmanager
async def trust_on(database_url: str, **settings: Any) -> AsyncIterator[Trust]:
    """A migrated store with two tenants, a gatekeeper on a test clock, the app on top."""
    engine = make_engine(database_url)
    await migrate(engine)
    await seed_tenants(engine)
    clock = Clock()
    gatekeeper = Gatekeeper(
        engine=engine,
        settings=OperatorSettings(**(CHEAP | settings)),
        clock=clock.now,
        monotonic=clock.monotonic,
    )
    trust = Trust(engine=engine, gatekeeper=gatekeeper, clock=clock, app=build_app(gatekeeper))
    try:
        yield trust
    finally:
        await trust.close()
        await engine.dispose()


def wall_ms() -> int:
    """Real wall-clock ms (bench)."""
    return time.time_ns() // 1_000_000
