"""API shapes of operators: logins, the caller, operators, API tokens, audit entries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from control_plane.inputs import Identifier, Utf8
from control_plane.operators.passwords import MIN_PASSWORD_LENGTH
from control_plane.operators.policy import Scope
from control_plane.operators.principal import Role
from protocols.limits import PRINTABLE_PATTERN

#: The ``String(254)`` column of operators' and lockouts' emails.
EMAIL_LENGTH = 254
#: An email as a person types it: no blanks or control characters around one ``@``.
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"


def _fits_when_compared(value: str) -> str:
    """Emails are stored lower-cased; a few letters grow when lowered (İ → i̇)."""
    if len(value.strip().lower()) > EMAIL_LENGTH:
        msg = f"at most {EMAIL_LENGTH} characters"
        raise ValueError(msg)
    return value


Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=EMAIL_LENGTH, pattern=EMAIL_PATTERN),
    Utf8,
    AfterValidator(_fits_when_compared),
]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=1024), Utf8]
#: Printable text of at most ``n`` characters (names people give things).
Text200 = Annotated[str, StringConstraints(max_length=200, pattern=PRINTABLE_PATTERN), Utf8]
TokenName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=PRINTABLE_PATTERN), Utf8
]


def moment(ms: int | None) -> datetime | None:
    """The store's milliseconds as an aware UTC datetime."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


class LoginIn(BaseModel):
    """Email and password, and an admin's TOTP code."""

    email: Email
    password: Secret
    totp: Annotated[str, Field(min_length=6, max_length=8, pattern=r"^[0-9 ]+$")] | None = None


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
    tenant_id: Identifier | None = None
    display_name: Text200 = ""
    password: (
        Annotated[str, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=1024), Utf8]
        | None
    ) = None


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

    name: TokenName
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
