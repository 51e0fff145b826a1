"""Server-side console sessions: a random id in an HttpOnly cookie, its sha256 in the store.

A session is "totp" between a right password and an admin's code (it opens nothing but the code
page, for a few minutes) and "active" after. It ends at its absolute expiry, after the idle
timeout without a request, or at logout. Activity is written at most every
``touch_interval`` so a busy console does not write on every request; the idle timeout is
therefore exact to within that interval. The CSRF token is derived from the session id
(sha256 with a label), so the server needs no extra secret or column to check it, and a
cross-site page, which cannot read the cookie, cannot compute it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.operators.tables import operator_sessions, operators

Stage = Literal["totp", "active"]
SESSION_COOKIE = "sf_session"


def new_secret() -> str:
    """A 256-bit random session id (or login CSRF nonce), URL-safe."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """How a session id or API token is stored: sha256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session_secret: str) -> str:
    """The CSRF token of a session: only a holder of the session id can compute it."""
    raw = hashlib.sha256(b"storefleet csrf\x00" + session_secret.encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def csrf_matches(session_secret: str, presented: str | None) -> bool:
    """Constant-time check of a presented CSRF token."""
    return presented is not None and hmac.compare_digest(csrf_token(session_secret), presented)


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session joined with its operator, as the gatekeeper checks it."""

    id_hash: str
    stage: Stage
    created_at: int
    last_seen_at: int
    expires_at: int
    revoked_at: int | None
    operator: Mapping[str, Any]


async def open_session(
    conn: AsyncConnection,
    *,
    operator_id: str,
    stage: Stage,
    now: int,
    lifetime_ms: int,
    client: str,
    user_agent: str,
) -> str:
    """Store a new session; return its id (for the cookie, never stored)."""
    secret = new_secret()
    await conn.execute(
        insert(operator_sessions).values(
            id_hash=digest(secret),
            operator_id=operator_id,
            stage=stage,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime_ms,
            client=client[:64],
            user_agent=user_agent[:200],
        )
    )
    return secret


async def find_session(engine: AsyncEngine, secret: str) -> SessionRow | None:
    """The session with id ``secret`` and its operator, whatever its state."""
    query = (
        select(operator_sessions, operators)
        .join(operators, operators.c.id == operator_sessions.c.operator_id)
        .where(operator_sessions.c.id_hash == digest(secret))
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    values = row._mapping
    return SessionRow(
        id_hash=values[operator_sessions.c.id_hash],
        stage=values[operator_sessions.c.stage],
        created_at=values[operator_sessions.c.created_at],
        last_seen_at=values[operator_sessions.c.last_seen_at],
        expires_at=values[operator_sessions.c.expires_at],
        revoked_at=values[operator_sessions.c.revoked_at],
        operator={column.name: values[column] for column in operators.c},
    )


def expiry(row: SessionRow, *, now: int, idle_ms: int) -> str | None:
    """Why the session no longer counts ("revoked", "expired", "idle"), or None."""
    if row.revoked_at is not None:
        return "revoked"
    if now >= row.expires_at:
        return "expired"
    if row.stage == "active" and now - row.last_seen_at >= idle_ms:
        return "idle"
    if row.operator["disabled_at"] is not None:
        return "operator_disabled"
    return None


async def touch(engine: AsyncEngine, id_hash: str, *, now: int) -> None:
    """Record activity (idle timeout starts again)."""
    async with engine.begin() as conn:
        await conn.execute(
            update(operator_sessions)
            .where(operator_sessions.c.id_hash == id_hash, operator_sessions.c.revoked_at.is_(None))
            .values(last_seen_at=now)
        )


async def revoke(conn: AsyncConnection, id_hash: str, *, now: int) -> bool:
    """End a session (logout, or a pending one replaced by the full one)."""
    result = await conn.execute(
        update(operator_sessions)
        .where(operator_sessions.c.id_hash == id_hash, operator_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount == 1
