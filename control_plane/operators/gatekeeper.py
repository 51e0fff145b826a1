"""The gatekeeper: turns a request's credentials into a Principal, or refuses it.

How it works, per request: a bearer API token (``Authorization: Bearer sft_…``) is looked up
by its sha256 and checked (revoked, expired, owner disabled); otherwise the ``sf_session``
cookie is looked up the same way and checked (stage, absolute and idle expiry), and an unsafe
method (POST, PUT, PATCH, DELETE) must carry the session's CSRF token as ``X-CSRF-Token`` or
the form field ``csrf_token``. Each client address + principal has a token bucket (100 a
minute by default): an empty one answers 429 with Retry-After. Every refusal is counted and
written to the audit log (a burst of 429s once per burst). The policy check itself is
`policy.require`'s; this module knows nothing of roles' rights.

A looked-up session or token is kept in process for ``auth_cache_seconds`` (5 s): a store
round trip on every request costs more than the whole 1 ms budget on a busy node (measured in
bench/trust.py). Expiry is still computed on every request from the kept row and the clock;
what waits up to that long is a logout, revocation or role change made on another instance
(this instance forgets at once). Unknown credentials are never kept, so a session or token
made elsewhere works at once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.operators import audit, metrics, sessions, tokens
from control_plane.operators.errors import (
    CsrfRefused,
    OperatorsError,
    RateLimited,
    Unauthenticated,
)
from control_plane.operators.passwords import Passwords
from control_plane.operators.principal import Principal, Role, Via
from control_plane.operators.ratelimit import TokenBuckets
from control_plane.operators.settings import OperatorSettings

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_KEEP_AT_MOST = 10_000


def wall_clock_ms() -> int:
    """Milliseconds since the epoch, the store's unit."""
    return time.time_ns() // 1_000_000


def client_address(request: Request) -> str:
    """The client's address as the server sees it (a proxy's forwarded one via uvicorn)."""
    return request.client.host if request.client else "unknown"


class Gatekeeper:
    """Authentication for one control plane: settings, hasher, buckets, clock."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        settings: OperatorSettings | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.settings = settings or OperatorSettings()
        self.now = clock
        self.passwords = Passwords(self.settings)
        self.api_buckets = TokenBuckets(rate=self.settings.api_rate_per_minute, clock=monotonic)
        self.login_buckets = TokenBuckets(rate=self.settings.login_rate_per_minute, clock=monotonic)
        self._monotonic = monotonic
        self._kept: dict[str, tuple[float, sessions.SessionRow | tokens.TokenRow]] = {}

    def forget(self) -> None:
        """Drop every kept session and token (after a logout, revocation or role change)."""
        self._kept.clear()

    def _recall(self, key: str) -> sessions.SessionRow | tokens.TokenRow | None:
        kept = self._kept.get(key)
        if kept is None or self._monotonic() - kept[0] >= self.settings.auth_cache_seconds:
            return None
        return kept[1]

    def _keep(self, key: str, row: sessions.SessionRow | tokens.TokenRow) -> None:
        if self.settings.auth_cache_seconds <= 0:
            return
        now = self._monotonic()
        if len(self._kept) >= _KEEP_AT_MOST:
            ttl = self.settings.auth_cache_seconds
            self._kept = {k: v for k, v in self._kept.items() if now - v[0] < ttl}
            if len(self._kept) >= _KEEP_AT_MOST:
                self._kept.clear()
        self._kept[key] = (now, row)

    async def authenticate(self, request: Request, *, action: str) -> Principal:
        """The principal of ``request``, rate-limited; refusals audited and raised."""
        client = client_address(request)
        try:
            principal = await self._principal(request, client=client)
        except OperatorsError as err:
            # an unauthenticated flood spends the address's anonymous bucket: 429 once empty,
            # and the audit log gets one entry per burst instead of one per request
            await self._limit(request, client=client, action=action, principal=None)
            await self._refuse(request, client=client, action=action, error=err, principal=None)
            raise
        await self._limit(request, client=client, action=action, principal=principal)
        return principal

    async def limit_client(self, request: Request, *, action: str) -> None:
        """Spend the client's anonymous bucket on a route open to anyone (enrolment
        redemption): its credential is in the body, so a flood is stopped by address, with the
        same 429, Retry-After and audit entry per burst as an unauthenticated operator request."""
        await self._limit(request, client=client_address(request), action=action, principal=None)

    async def _limit(
        self, request: Request, *, client: str, action: str, principal: Principal | None
    ) -> None:
        key = (client, principal.operator_id if principal else None)
        try:
            self.api_buckets.take(key)
        except RateLimited as err:
            if err.first:
                await self._refuse(
                    request, client=client, action=action, error=err, principal=principal
                )
            else:
                metrics.REFUSALS.labels(err.reason).inc()
            raise

    async def _principal(self, request: Request, *, client: str) -> Principal:
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, credential = authorization.partition(" ")
            if scheme.lower() != "bearer" or not tokens.looks_like_token(credential.strip()):
                raise Unauthenticated("the Authorization header is not 'Bearer sft_…'")
            return await self._token_principal(credential.strip(), client=client)
        secret = request.cookies.get(sessions.SESSION_COOKIE)
        if not secret:
            raise Unauthenticated()
        principal = await self._session_principal(secret)
        if request.method not in SAFE_METHODS:
            await self._check_csrf(request, secret)
        return principal

    async def _token_principal(self, secret: str, *, client: str) -> Principal:
        key = "t:" + sessions.digest(secret)
        row = self._recall(key)
        if not isinstance(row, tokens.TokenRow):
            row = await tokens.find_token(self.engine, secret)
            if row is None:
                raise Unauthenticated("unknown API token")
        now = self.now()
        reason = tokens.refusal(row, now=now)
        if reason is not None:
            raise Unauthenticated(f"API token {row.id} is {reason.replace('_', ' ')}")
        if row.last_used_at is None or now - row.last_used_at >= self.settings.touch_interval_ms:
            await tokens.mark_used(self.engine, row.id, now=now, client=client)
            row = dataclasses.replace(row, last_used_at=now)
            self._keep(key, row)
        elif self._recall(key) is None:
            self._keep(key, row)
        return principal_of(row.operator, via="token", scopes=row.scopes, token_id=row.id)

    async def _session_principal(self, secret: str) -> Principal:
        key = "s:" + sessions.digest(secret)
        row = self._recall(key)
        if not isinstance(row, sessions.SessionRow):
            row = await sessions.find_session(self.engine, secret)
            if row is None:
                raise Unauthenticated("unknown session; log in again")
        now = self.now()
        reason = sessions.expiry(row, now=now, idle_ms=self.settings.session_idle_ms)
        if reason is not None:
            raise Unauthenticated(f"session {reason.replace('_', ' ')}; log in again")
        if row.stage != "active":
            raise Unauthenticated("the login is not finished: enter the TOTP code at /login/totp")
        if now - row.last_seen_at >= self.settings.touch_interval_ms:
            await sessions.touch(self.engine, row.id_hash, now=now)
            row = dataclasses.replace(row, last_seen_at=now)
            self._keep(key, row)
        elif self._recall(key) is None:
            self._keep(key, row)
        return principal_of(row.operator, via="session")

    async def _check_csrf(self, request: Request, secret: str) -> None:
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
            value = (await request.form()).get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
        if not sessions.csrf_matches(secret, presented):
            raise CsrfRefused

    async def refused(
        self, request: Request, *, principal: Principal | None, action: str, reason: str
    ) -> None:
        """Count and audit a refusal decided elsewhere (the policy's 403)."""
        metrics.REFUSALS.labels(reason).inc()
        actor = audit.Actor.of(principal) if principal else audit.ANONYMOUS
        await audit.record_alone(
            self.engine,
            at=self.now(),
            actor=actor,
            action=action,
            outcome="refused",
            target=f"{request.method} {request.url.path}",
            reason=reason,
            client=client_address(request),
        )

    async def _refuse(
        self,
        request: Request,
        *,
        client: str,
        action: str,
        error: OperatorsError,
        principal: Principal | None,
    ) -> None:
        log.info(
            "refused %s %s from %s: %s", request.method, request.url.path, client, error.reason
        )
        await self.refused(request, principal=principal, action=action, reason=error.reason)


def principal_of(
    row: Mapping[str, Any],
    *,
    via: Via,
    scopes: frozenset[str] | None = None,
    token_id: str | None = None,
) -> Principal:
    """The principal an operator row acts as."""
    return Principal(
        operator_id=row["id"],
        email=row["email"],
        role=Role(row["role"]),
        tenant_id=row["tenant_id"],
        via=via,
        scopes=scopes,
        token_id=token_id,
    )


def get_gatekeeper(request: Request) -> Gatekeeper:
    """The app's gatekeeper, made on first use (settings from `app.state` or the environment)."""
    state = request.app.state
    gatekeeper: Gatekeeper | None = getattr(state, "operators", None)
    if gatekeeper is None:
        settings = getattr(state, "operator_settings", None) or OperatorSettings()
        gatekeeper = Gatekeeper(engine=state.engine, settings=settings)
        state.operators = gatekeeper
    return gatekeeper
