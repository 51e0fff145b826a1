"""Who is acting: the principal a request was authenticated as, and the roles that exist.

Kept apart from `policy` (which needs the gatekeeper to resolve a principal) so the session and
token stores can build a principal without importing the dependency that uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    """The four roles of the issue, from widest to narrowest."""

    PLATFORM_ADMIN = "platform_admin"
    TENANT_ADMIN = "tenant_admin"
    OPERATOR = "operator"
    VIEWER = "viewer"

    @property
    def needs_totp(self) -> bool:
        """Admins prove a second factor at every login."""
        return self in {Role.PLATFORM_ADMIN, Role.TENANT_ADMIN}

    @property
    def is_platform(self) -> bool:
        """A platform role has no tenant and sees every tenant."""
        return self is Role.PLATFORM_ADMIN


Via = Literal["session", "token", "cli"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated operator, as one request (or CLI command) acts for them.

    ``tenant_id`` is None only for platform admins; ``scopes`` is None for a session (the role
    alone decides) and the token's scopes for an API token (the role AND the scopes decide).
    """

    operator_id: str
    email: str
    role: Role
    tenant_id: str | None
    via: Via
    scopes: frozenset[str] | None = None
    token_id: str | None = None

    @property
    def is_platform(self) -> bool:
        """Whether this principal sees every tenant."""
        return self.tenant_id is None

    def sees_tenant(self, tenant_id: str) -> bool:
        """Whether rows of ``tenant_id`` are visible to this principal."""
        return self.tenant_id is None or self.tenant_id == tenant_id
