"""API tokens for automation: ``sft_`` + 256 random bits, shown once, stored as sha256.

A token acts for its owner with the owner's role narrowed to its scopes, until it expires or is
revoked; disabling the owner stops it too. Its last use (time and address) is written at most
every ``touch_interval``, like session activity.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.operators.sessions import digest
from control_plane.operators.tables import api_tokens, operators

PREFIX = "sft_"


@dataclass(frozen=True, slots=True)
class TokenRow:
    """A token joined with its owner, as the gatekeeper checks it."""

    id: str
    scopes: frozenset[str]
    expires_at: int
    revoked_at: int | None
    last_used_at: int | None
    operator: Mapping[str, Any]


def new_token() -> tuple[str, str]:
    """A new token's (id, secret); the secret is what the client sends."""
    return secrets.token_hex(8), PREFIX + secrets.token_urlsafe(32)


def looks_like_token(value: str) -> bool:
    """Cheap shape check before touching the store."""
    return value.startswith(PREFIX) and 20 < len(value) < 100


async def insert_token(
    conn: AsyncConnection,
    *,
    token_id: str,
    secret: str,
    operator_id: str,
    name: str,
    scopes: frozenset[str],
    now: int,
    expires_at: int,
) -> None:
    """Store a token by its hash."""
    await conn.execute(
        insert(api_tokens).values(
            id=token_id,
            token_hash=digest(secret),
            operator_id=operator_id,
            name=name,
            scopes=" ".join(sorted(scopes)),
            created_at=now,
            expires_at=expires_at,
        )
    )


async def find_token(engine: AsyncEngine, secret: str) -> TokenRow | None:
    """The token with this secret and its owner, whatever its state."""
    query = (
        select(api_tokens, operators)
        .join(operators, operators.c.id == api_tokens.c.operator_id)
        .where(api_tokens.c.token_hash == digest(secret))
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    values = row._mapping
    return TokenRow(
        id=values[api_tokens.c.id],
        scopes=frozenset(values[api_tokens.c.scopes].split()),
        expires_at=values[api_tokens.c.expires_at],
        revoked_at=values[api_tokens.c.revoked_at],
        last_used_at=values[api_tokens.c.last_used_at],
        operator={column.name: values[column] for column in operators.c},
    )


def refusal(row: TokenRow, *, now: int) -> str | None:
    """Why the token no longer counts ("revoked", "expired", "operator_disabled"), or None."""
    if row.revoked_at is not None:
        return "revoked"
    if now >= row.expires_at:
        return "expired"
    if row.operator["disabled_at"] is not None:
        return "operator_disabled"
    return None


async def mark_used(engine: AsyncEngine, token_id: str, *, now: int, client: str) -> None:
    """Record the token's last use."""
    async with engine.begin() as conn:
        await conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id)
            .values(last_used_at=now, last_used_from=client[:64])
        )
