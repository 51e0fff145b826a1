"""API shapes of operators: logins, the caller, operators, API tokens, audit entries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from control_plane.operators.passwords import MIN_PASSWORD_LENGTH
from control_plane.operators.policy import Scope
from control_plane.operators.principal import Role

Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
Secret = Annotated[str, Field(min_length=1, max_length=1024)]


def moment(ms: int | None) -> datetime | None:
    """The store's milliseconds as an aware UTC datetime."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


class LoginIn(BaseModel):
    """Email and password, and an admin's TOTP code."""

    email: Email
    password: Secret
    totp: Annotated[str, Field(min_length=6, max_length=8)] | None = None


class PrincipalOut(BaseModel):
    """Who the caller is and how they authenticated."""

    operator_id: str
    email: str
    role: Role
    tenant_id: str | None
    via: Literal["session", "token", "cli"]
    scopes: list[str] | None
    actions: list[str] = Field(description="what the policy table lets this caller do")


class LoginOut(BaseModel):
    """A session was opened (cookie set); send ``csrf_token`` as X-CSRF-Token on changes."""

    principal: PrincipalOut
    csrf_token: str
    expires_at: datetime


class OperatorIn(BaseModel):
    """A new operator; a tenant admin's are always in its own tenant."""

    email: Email
    role: Role
    tenant_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    display_name: Annotated[str, Field(max_length=200)] = ""
    password: Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)] | None = None


class OperatorOut(BaseModel):
    """An operator without secrets."""

    id: str
    email: str
    display_name: str
    role: Role
    tenant_id: str | None
    totp_enrolled: bool
    created_by: str
    created_at: datetime
    disabled_at: datetime | None


class OperatorCreatedOut(BaseModel):
    """A new operator and, this once, their password."""

    operator: OperatorOut
    password: str


class TokenIn(BaseModel):
    """A new API token of the caller."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(Scope))]
    days: Annotated[int, Field(ge=1, le=3650)] | None = None


class TokenOut(BaseModel):
    """An API token without its secret, with its last use."""

    id: str
    operator_id: str
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    last_used_from: str | None


class TokenCreatedOut(BaseModel):
    """A new API token and, this once, its secret: send it as ``Authorization: Bearer …``."""

    token: TokenOut
    secret: str


class AuditEntryOut(BaseModel):
    """One audit entry: who, what, when, from where, before/after."""

    id: int
    at: datetime
    actor: str
    actor_id: str | None
    via: str
    token_id: str | None
    tenant_id: str | None
    action: str
    target: str
    outcome: str
    reason: str
    client: str
    before: Any | None
    after: Any | None
