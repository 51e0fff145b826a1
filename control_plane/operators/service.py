"""Operators and their API tokens: create, list, revoke, each action audited in its transaction.

Functions take the acting `Principal` (or `CLI` for the bootstrap command, which has shell access
to the store and so stands above every role) and enforce what the policy table alone cannot:
a role may only grant roles no wider than its own, a tenant admin acts in its own tenant, a
token never outlives the configured maximum nor holds an unknown scope.
"""

from __future__ import annotations

import dataclasses
import getpass
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import tenants
from control_plane.operators import audit, metrics, tokens
from control_plane.operators.errors import (
    Forbidden,
    InvalidOperator,
    OperatorExists,
    OperatorNotFound,
    TenantNotFound,
    TokenNotFound,
)
from control_plane.operators.login import normalise
from control_plane.operators.passwords import MIN_PASSWORD_LENGTH, Passwords, generate_password
from control_plane.operators.policy import GRANTABLE, Action, Scope, permits, tenant_scope
from control_plane.operators.principal import Principal, Role
from control_plane.operators.settings import OperatorSettings
from control_plane.operators.tables import api_tokens, operators

DAY_MS = 86_400_000


def cli_actor() -> audit.Actor:
    """The audit actor of a shell command: the local user who ran it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return audit.Actor(actor=f"cli:{user}", via="cli")


@dataclass(frozen=True, slots=True)
class OperatorView:
    """An operator as other operators see it: no hash, no seed."""

    id: str
    email: str
    display_name: str
    role: Role
    tenant_id: str | None
    totp_enrolled: bool
    created_by: str
    created_at: int
    disabled_at: int | None


@dataclass(frozen=True, slots=True)
class TokenView:
    """An API token without its secret; ``last_used_at``/``from`` show it is in use."""

    id: str
    operator_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: int
    expires_at: int
    revoked_at: int | None
    last_used_at: int | None
    last_used_from: str | None


def _operator_view(row: Mapping[Any, Any]) -> OperatorView:
    return OperatorView(
        id=row["id"],
        email=row["email"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        tenant_id=row["tenant_id"],
        totp_enrolled=row["totp_confirmed_at"] is not None,
        created_by=row["created_by"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
    )


def _token_view(row: Mapping[Any, Any]) -> TokenView:
    return TokenView(
        id=row["id"],
        operator_id=row["operator_id"],
        name=row["name"],
        scopes=tuple(row["scopes"].split()),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
        last_used_from=row["last_used_from"],
    )


def _public(view: OperatorView) -> dict[str, Any]:
    return {
        "email": view.email,
        "role": view.role.value,
        "tenant_id": view.tenant_id,
        "display_name": view.display_name,
    }


def _checked_role_and_tenant(by: Principal | None, role: Role, tenant_id: str | None) -> str | None:
    """The tenant the new operator belongs to, after the grant rules."""
    if by is not None:
        if role not in GRANTABLE[by.role]:
            raise Forbidden(
                Action.OPERATORS_WRITE.value, f"a {by.role.value} cannot create a {role.value}"
            )
        tenant_id = tenant_scope(by, tenant_id, action=Action.OPERATORS_WRITE)
    if role.is_platform and tenant_id is not None:
        raise InvalidOperator("a platform admin belongs to no tenant; leave the tenant out")
    if not role.is_platform and tenant_id is None:
        raise InvalidOperator(f"a {role.value} belongs to a tenant; give its id")
    return tenant_id


async def create_operator(
    engine: AsyncEngine,
    *,
    passwords: Passwords,
    by: Principal | None,
    email: str,
    role: Role,
    tenant_id: str | None,
    now: int,
    display_name: str = "",
    password: str | None = None,
    client: str = "",
) -> tuple[OperatorView, str]:
    """A new operator and their password (generated unless given), to be shown once.

    ``by`` None is the shell (`storefleet operators create`), which bootstraps the first admin.
    """
    email = normalise(email)
    tenant_id = _checked_role_and_tenant(by, role, tenant_id)
    if password is None:
        password = generate_password()
    elif len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidOperator(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = await passwords.hash(password)
    actor = audit.Actor.of(by) if by else cli_actor()
    values = {
        "id": secrets.token_hex(16),
        "email": email,
        "display_name": display_name,
        "role": role.value,
        "tenant_id": tenant_id,
        "password_hash": password_hash,
        "created_by": actor.actor,
        "created_at": now,
        "password_changed_at": now,
    }
    async with engine.begin() as conn:
        if tenant_id is not None:
            found = await conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))
            if found.first() is None:
                raise TenantNotFound(tenant_id)
        taken = await conn.execute(select(operators.c.id).where(operators.c.email == email))
        if taken.first() is not None:
            raise OperatorExists(email)
        try:
            await conn.execute(insert(operators).values(**values))
        except IntegrityError as err:  # a concurrent create of the same email
            raise OperatorExists(email) from err
        view = _operator_view({**values, "totp_confirmed_at": None, "disabled_at": None})
        await audit.record(
            conn,
            at=now,
            actor=actor,
            action=Action.OPERATORS_WRITE.value,
            outcome="ok",
            target=f"operator {email}",
            client=client,
            tenant_id=tenant_id,
            after=_public(view),
        )
    return view, password


async def reset_password(
    engine: AsyncEngine, *, passwords: Passwords, email: str, now: int, client: str = ""
) -> str:
    """A new generated password for ``email`` (the shell's job: `by` is always the CLI), shown
    once; the sessions it opened before stay valid until they expire or log out."""
    email = normalise(email)
    password = generate_password()
    password_hash = await passwords.hash(password)
    async with engine.begin() as conn:
        found = (
            await conn.execute(select(operators.c.tenant_id).where(operators.c.email == email))
        ).first()
        if found is None:
            raise OperatorNotFound(email)
        await conn.execute(
            update(operators)
            .where(operators.c.email == email)
            .values(password_hash=password_hash, password_changed_at=now)
        )
        await audit.record(
            conn,
            at=now,
            actor=cli_actor(),
            action=Action.OPERATORS_WRITE.value,
            outcome="ok",
            target=f"operator {email}",
            client=client,
            tenant_id=found.tenant_id,
            reason="password reset",
        )
    return password


async def list_operators(engine: AsyncEngine, *, by: Principal) -> list[OperatorView]:
    """Operators the principal may see: its tenant's, or all for a platform admin."""
    query = select(operators).order_by(operators.c.email)
    if by.tenant_id is not None:
        query = query.where(operators.c.tenant_id == by.tenant_id)
    async with engine.connect() as conn:
        rows = await conn.execute(query)
        return [_operator_view(row) for row in rows.mappings()]


async def find_operator(engine: AsyncEngine, *, email: str) -> OperatorView:
    """One operator by email (the CLI names operators by email)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(operators).where(operators.c.email == normalise(email)))
        ).first()
    if row is None:
        raise OperatorNotFound(email)
    return _operator_view(row._mapping)


def _scopes(names: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(name.strip().lower() for name in names if name.strip())
    known = {scope.value for scope in Scope}
    unknown = chosen - known
    if unknown or not chosen:
        got = " ".join(sorted(chosen)) or "none"
        raise InvalidOperator(f"scopes must be one or more of {' '.join(sorted(known))}; got {got}")
    return chosen


async def create_token(
    engine: AsyncEngine,
    *,
    settings: OperatorSettings,
    owner: OperatorView,
    actor: audit.Actor,
    name: str,
    scopes: Iterable[str],
    now: int,
    days: int | None = None,
    client: str = "",
) -> tuple[TokenView, str]:
    """A new API token of ``owner``; the secret is returned once and stored only hashed."""
    chosen = _scopes(scopes)
    days = settings.token_default_days if days is None else days
    if not 1 <= days <= settings.token_max_days:
        raise InvalidOperator(f"a token lives 1 to {settings.token_max_days} days; got {days}")
    if owner.disabled_at is not None:
        raise InvalidOperator(f"operator {owner.email} is disabled")
    token_id, secret = tokens.new_token()
    expires_at = now + days * DAY_MS
    async with engine.begin() as conn:
        await tokens.insert_token(
            conn,
            token_id=token_id,
            secret=secret,
            operator_id=owner.id,
            name=name,
            scopes=chosen,
            now=now,
            expires_at=expires_at,
        )
        await audit.record(
            conn,
            at=now,
            actor=actor,
            action=Action.TOKENS_WRITE.value,
            outcome="ok",
            target=f"token {token_id}",
            client=client,
            tenant_id=owner.tenant_id,
            after={
                "owner": owner.email,
                "name": name,
                "scopes": sorted(chosen),
                "expires_at": expires_at,
            },
        )
    metrics.TOKENS.labels("created").inc()
    view = TokenView(
        id=token_id,
        operator_id=owner.id,
        name=name,
        scopes=tuple(sorted(chosen)),
        created_at=now,
        expires_at=expires_at,
        revoked_at=None,
        last_used_at=None,
        last_used_from=None,
    )
    return view, secret


async def list_tokens(engine: AsyncEngine, *, owner_id: str) -> list[TokenView]:
    """An operator's tokens, newest first, revoked and expired ones included."""
    query = (
        select(api_tokens)
        .where(api_tokens.c.operator_id == owner_id)
        .order_by(api_tokens.c.created_at.desc())
    )
    async with engine.connect() as conn:
        rows = await conn.execute(query)
        return [_token_view(row) for row in rows.mappings()]


async def revoke_token(
    engine: AsyncEngine, *, by: Principal | None, token_id: str, now: int, client: str = ""
) -> TokenView:
    """Revoke a token: its owner may, and an admin of the owner's tenant (a leak)."""
    async with engine.begin() as conn:
        found = (
            await conn.execute(
                select(api_tokens, operators.c.tenant_id, operators.c.email)
                .join(operators, operators.c.id == api_tokens.c.operator_id)
                .where(api_tokens.c.id == token_id)
            )
        ).first()
        if found is None:
            raise TokenNotFound(token_id)
        row = found._mapping
        if by is not None and by.operator_id != row["operator_id"]:
            owners_admin = permits(by, Action.OPERATORS_WRITE) and (
                by.tenant_id is None or by.tenant_id == row["tenant_id"]
            )
            if not owners_admin:
                raise TokenNotFound(token_id)  # not yours: as if it did not exist
        before = _token_view(row)
        if before.revoked_at is None:
            await conn.execute(
                update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=now)
            )
            await audit.record(
                conn,
                at=now,
                actor=audit.Actor.of(by) if by else cli_actor(),
                action=Action.TOKENS_WRITE.value,
                outcome="ok",
                target=f"token {token_id}",
                client=client,
                tenant_id=row["tenant_id"],
                before={"revoked_at": None, "owner": row["email"]},
                after={"revoked_at": now, "owner": row["email"]},
            )
            metrics.TOKENS.labels("revoked").inc()
    return dataclasses.replace(before, revoked_at=before.revoked_at or now)
