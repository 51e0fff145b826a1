"""Logging in: password (argon2id), lockout, TOTP for admins, sessions, logout.

How it works: the email's lockout row is checked first (a locked email is refused without
looking at the password); the password is verified (against a dummy hash for an unknown email,
so both take as long); a failure counts toward the lockout of that email, known or not. A right
password opens an "active" session, or for an admin a short "totp" session that only the code
page accepts: it shows the authenticator's QR on the first login (enrolment) and asks for the
code; a wrong code counts as a failure too. The right code closes the pending session and opens
a new active one, so the session id changes when privileges do. Every outcome is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.operators import audit, metrics, sessions, totp
from control_plane.operators.errors import LockedOut, LoginRefused, TotpRequired, Unauthenticated
from control_plane.operators.gatekeeper import Gatekeeper, principal_of
from control_plane.operators.principal import Principal, Role
from control_plane.operators.tables import login_lockouts, operators

LOGIN = "auth:login"
TOTP = "auth:totp"
LOGOUT = "auth:logout"


@dataclass(frozen=True, slots=True)
class Client:
    """Where a login comes from (audit, session record)."""

    address: str
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class Opened:
    """A session opened by a login step: its id (the cookie) and what it is."""

    secret: str
    stage: sessions.Stage
    principal: Principal
    expires_at: int

    @property
    def csrf_token(self) -> str:
        """The CSRF token pages and API clients send back on unsafe requests."""
        return sessions.csrf_token(self.secret)


def normalise(email: str) -> str:
    """Emails compare case-insensitively and without surrounding blanks."""
    return email.strip().lower()


def _actor(email: str, operator: Mapping[str, Any] | None) -> audit.Actor:
    if operator is None:
        return audit.Actor(actor=email, via="session")
    return audit.Actor(
        actor=operator["email"],
        via="session",
        actor_id=operator["id"],
        tenant_id=operator["tenant_id"],
    )


async def _locked_for(conn: AsyncConnection, email: str, now: int) -> int | None:
    row = (
        await conn.execute(
            select(login_lockouts.c.locked_until).where(login_lockouts.c.email == email)
        )
    ).first()
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return int(row.locked_until - now)


async def _count_failure(gk: Gatekeeper, conn: AsyncConnection, email: str, now: int) -> bool:
    """Count a failed login for ``email``; True when it just locked the email out."""
    settings = gk.settings
    row = (
        await conn.execute(select(login_lockouts).where(login_lockouts.c.email == email))
    ).first()
    # failures older than a lockout period are forgotten: a slow typo-er is never locked out
    stale = row is None or now - row.last_failure_at >= settings.lockout_ms
    failures = 1 if stale or row is None else row.failures + 1
    locked_until = now + settings.lockout_ms if failures >= settings.lockout_failures else None
    values = {"failures": 0 if locked_until else failures, "last_failure_at": now}
    if row is None:
        await conn.execute(
            insert(login_lockouts).values(email=email, locked_until=locked_until, **values)
        )
    else:
        await conn.execute(
            update(login_lockouts)
            .where(login_lockouts.c.email == email)
            .values(locked_until=locked_until, **values)
        )
    return locked_until is not None


async def _operator(conn: AsyncConnection, email: str) -> Mapping[str, Any] | None:
    row = (
        await conn.execute(
            select(operators).where(operators.c.email == email, operators.c.disabled_at.is_(None))
        )
    ).first()
    return None if row is None else dict(row._mapping)


async def _refuse(
    gk: Gatekeeper,
    conn: AsyncConnection,
    *,
    email: str,
    operator: Mapping[str, Any] | None,
    action: str,
    reason: str,
    client: Client,
    now: int,
) -> None:
    """Count the failure, audit it, and raise the refusal the client sees."""
    locked = await _count_failure(gk, conn, email, now)
    await audit.record(
        conn,
        at=now,
        actor=_actor(email, operator),
        action=action,
        outcome="refused",
        target=email,
        reason=reason + (", now locked out" if locked else ""),
        client=client.address,
    )
    metrics.LOGINS.labels("refused").inc()


async def check_password(
    gk: Gatekeeper, *, email: str, password: str, client: Client
) -> Mapping[str, Any]:
    """The operator whose email and password these are; lockout and audit on failure."""
    email = normalise(email)
    now = gk.now()
    async with gk.engine.begin() as conn:
        locked_ms = await _locked_for(conn, email, now)
        operator = await _operator(conn, email)
        if locked_ms is not None:
            await audit.record(
                conn,
                at=now,
                actor=_actor(email, operator),
                action=LOGIN,
                outcome="refused",
                target=email,
                reason="locked_out",
                client=client.address,
            )
    if locked_ms is not None:
        metrics.LOGINS.labels("locked_out").inc()
        raise LockedOut(locked_ms / 1000)
    verified = await gk.passwords.verify(operator["password_hash"] if operator else None, password)
    async with gk.engine.begin() as conn:
        if not verified.ok or operator is None:
            reason = "unknown_email" if operator is None else "wrong_password"
            await _refuse(
                gk,
                conn,
                email=email,
                operator=operator,
                action=LOGIN,
                reason=reason,
                client=client,
                now=now,
            )
        elif verified.rehash is not None:
            await conn.execute(
                update(operators)
                .where(operators.c.id == operator["id"])
                .values(password_hash=verified.rehash)
            )
    if not verified.ok or operator is None:
        raise LoginRefused
    return operator


async def _open(
    gk: Gatekeeper,
    conn: AsyncConnection,
    operator: Mapping[str, Any],
    *,
    stage: sessions.Stage,
    client: Client,
    now: int,
) -> Opened:
    lifetime = gk.settings.session_absolute_ms if stage == "active" else gk.settings.totp_pending_ms
    secret = await sessions.open_session(
        conn,
        operator_id=operator["id"],
        stage=stage,
        now=now,
        lifetime_ms=lifetime,
        client=client.address,
        user_agent=client.user_agent,
    )
    return Opened(
        secret=secret,
        stage=stage,
        principal=principal_of(operator, via="session"),
        expires_at=now + lifetime,
    )


async def _succeeded(
    gk: Gatekeeper, conn: AsyncConnection, operator: Mapping[str, Any], *, client: Client, now: int
) -> Opened:
    await conn.execute(delete(login_lockouts).where(login_lockouts.c.email == operator["email"]))
    opened = await _open(gk, conn, operator, stage="active", client=client, now=now)
    await audit.record(
        conn,
        at=now,
        actor=_actor(operator["email"], operator),
        action=LOGIN,
        outcome="ok",
        target=operator["email"],
        client=client.address,
    )
    metrics.LOGINS.labels("ok").inc()
    return opened


async def login(
    gk: Gatekeeper,
    *,
    email: str,
    password: str,
    client: Client,
    totp_code: str | None = None,
    interactive: bool = True,
) -> Opened:
    """Check the password (and an admin's code) and open a session.

    The console (``interactive``) gets a "totp" session for an admin who gave no code yet, and
    asks for it on the next page; an API client must send ``totp_code`` with the password
    (`TotpRequired` otherwise), so it never holds a half-open session.
    """
    operator = await check_password(gk, email=email, password=password, client=client)
    now = gk.now()
    if not Role(operator["role"]).needs_totp:
        async with gk.engine.begin() as conn:
            return await _succeeded(gk, conn, operator, client=client, now=now)
    if totp_code is not None:
        return await _verify_code(gk, operator, code=totp_code, client=client, pending=None)
    if not interactive:
        raise TotpRequired
    async with gk.engine.begin() as conn:
        return await _open(gk, conn, operator, stage="totp", client=client, now=now)


async def pending_operator(gk: Gatekeeper, secret: str | None) -> Mapping[str, Any]:
    """The operator of a "totp" session that may still enter its code."""
    row = await sessions.find_session(gk.engine, secret) if secret else None
    if row is None or row.stage != "totp":
        raise Unauthenticated("no login waiting for a code; log in again")
    reason = sessions.expiry(row, now=gk.now(), idle_ms=gk.settings.session_idle_ms)
    if reason is not None:
        raise Unauthenticated(f"the login waiting for a code is {reason}; log in again")
    return row.operator


async def totp_enrolment(gk: Gatekeeper, secret: str | None) -> str | None:
    """For an admin not yet enrolled: their (new or unconfirmed) TOTP seed; else None."""
    operator = await pending_operator(gk, secret)
    if operator["totp_confirmed_at"] is not None:
        return None
    if operator["totp_secret"] is not None:
        return str(operator["totp_secret"])
    seed = totp.new_secret()
    async with gk.engine.begin() as conn:
        await conn.execute(
            update(operators)
            .where(operators.c.id == operator["id"], operators.c.totp_secret.is_(None))
            .values(totp_secret=seed)
        )
        stored = (
            await conn.execute(
                select(operators.c.totp_secret).where(operators.c.id == operator["id"])
            )
        ).scalar_one()
    return str(stored)


async def submit_code(gk: Gatekeeper, *, secret: str | None, code: str, client: Client) -> Opened:
    """The console's second step: the code of a pending admin login."""
    operator = await pending_operator(gk, secret)
    if secret is None:
        raise RuntimeError("a pending login without its secret (pending_operator refuses that)")
    return await _verify_code(gk, operator, code=code, client=client, pending=secret)


async def _verify_code(
    gk: Gatekeeper,
    operator: Mapping[str, Any],
    *,
    code: str,
    client: Client,
    pending: str | None,
) -> Opened:
    now = gk.now()
    email = operator["email"]
    async with gk.engine.begin() as conn:
        locked_ms = await _locked_for(conn, email, now)
        current = (
            await conn.execute(select(operators).where(operators.c.id == operator["id"]))
        ).first()
        if current is None:
            raise RuntimeError("the operator row vanished during its own login")
        row = current._mapping
        enrolled = row["totp_confirmed_at"] is not None
        step = (
            None
            if locked_ms is not None or row["totp_secret"] is None
            else totp.matching_step(
                row["totp_secret"], code, now_ms=now, last_step=row["totp_last_step"]
            )
        )
        if step is None:
            if pending is not None and locked_ms is not None:
                await sessions.revoke(conn, sessions.digest(pending), now=now)
            if locked_ms is None:
                reason = "wrong_code" if enrolled or row["totp_secret"] else "totp_not_enrolled"
                await _refuse(
                    gk,
                    conn,
                    email=email,
                    operator=operator,
                    action=TOTP,
                    reason=reason,
                    client=client,
                    now=now,
                )
        else:
            values: dict[str, Any] = {"totp_last_step": step}
            if not enrolled:
                values["totp_confirmed_at"] = now
            await conn.execute(
                update(operators).where(operators.c.id == operator["id"]).values(**values)
            )
            if not enrolled:
                await audit.record(
                    conn,
                    at=now,
                    actor=_actor(email, operator),
                    action="auth:totp_enrol",
                    outcome="ok",
                    target=email,
                    client=client.address,
                )
            if pending is not None:
                await sessions.revoke(conn, sessions.digest(pending), now=now)
            return await _succeeded(gk, conn, operator, client=client, now=now)
    if locked_ms is not None:
        metrics.LOGINS.labels("locked_out").inc()
        raise LockedOut(locked_ms / 1000)
    metrics.LOGINS.labels("totp_refused").inc()
    raise LoginRefused


async def logout(gk: Gatekeeper, *, secret: str | None, client: Client) -> bool:
    """End the session whose id is ``secret``; True if one was open."""
    if not secret:
        return False
    row = await sessions.find_session(gk.engine, secret)
    if row is None:
        return False
    now = gk.now()
    gk.forget()
    async with gk.engine.begin() as conn:
        ended = await sessions.revoke(conn, row.id_hash, now=now)
        if ended:
            await audit.record(
                conn,
                at=now,
                actor=_actor(row.operator["email"], row.operator),
                action=LOGOUT,
                outcome="ok",
                target=row.operator["email"],
                client=client.address,
            )
    return ended
