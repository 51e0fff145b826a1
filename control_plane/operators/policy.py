"""Who may do what: ONE table of role → actions and token scope → actions, enforced in one place.

How it works: a route declares the action it performs with an `Annotated` alias built by
`require` (``principal: policy.DevicesWrite``). The dependency asks the gatekeeper for the
principal (session cookie + CSRF token on unsafe methods, or a bearer API token; rate-limited per
client), then checks `permits`: the role must allow the action and, for a token, one of its
scopes must too. A refusal is written to the audit log and raised as a domain error (401/403).
Tenant scoping is the principal's: `tenant_scope` turns a client-supplied tenant id into the one
the principal may act on, so no query takes a tenant from the client alone.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request

from control_plane.operators.errors import Forbidden
from control_plane.operators.gatekeeper import get_gatekeeper
from control_plane.operators.principal import Principal, Role


class Action(StrEnum):
    """Everything an operator can be allowed to do; ``noun:verb``."""

    DEVICES_READ = "devices:read"
    DEVICES_WRITE = "devices:write"  # decommission, replace, rename
    COMMANDS_SEND = "commands:send"
    ENROLMENTS_READ = "enrolments:read"  # list, without secrets
    ENROLMENTS_WRITE = "enrolments:write"  # create, revoke, reprint (the sheet holds the secret)
    CATALOG_READ = "catalog:read"
    CATALOG_WRITE = "catalog:write"
    SALES_READ = "sales:read"
    ROLLOUTS_READ = "rollouts:read"
    ROLLOUTS_WRITE = "rollouts:write"
    STORES_WRITE = "stores:write"
    TENANTS_WRITE = "tenants:write"
    CA_WRITE = "ca:write"  # CRL refresh
    OPERATORS_READ = "operators:read"
    OPERATORS_WRITE = "operators:write"
    TOKENS_WRITE = "tokens:write"  # one's own API tokens
    AUDIT_READ = "audit:read"


class Scope(StrEnum):
    """What an API token may be limited to; it never adds to its owner's role."""

    READ = "read"
    DEVICES = "devices"
    ENROLMENTS = "enrolments"
    CATALOG = "catalog"
    ROLLOUTS = "rollouts"
    AUDIT = "audit"
    TENANTS = "tenants"


A = Action
_VIEWER = frozenset(
    {A.DEVICES_READ, A.ENROLMENTS_READ, A.CATALOG_READ, A.SALES_READ, A.ROLLOUTS_READ}
)
_OPERATOR = _VIEWER | {
    A.DEVICES_WRITE,
    A.COMMANDS_SEND,
    A.ENROLMENTS_WRITE,
    A.CATALOG_WRITE,
    A.TOKENS_WRITE,
}
_TENANT_ADMIN = _OPERATOR | {
    A.ROLLOUTS_WRITE,
    A.STORES_WRITE,
    A.OPERATORS_READ,
    A.OPERATORS_WRITE,
    A.AUDIT_READ,
}

#: THE policy table: what each role may do. A tenant role acts inside its own tenant only.
ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: _VIEWER,
    Role.OPERATOR: _OPERATOR,
    Role.TENANT_ADMIN: _TENANT_ADMIN,
    Role.PLATFORM_ADMIN: frozenset(Action),
}

#: What a token scope allows (intersected with the owner's role). No scope grants
#: ``tokens:write``: a leaked token cannot mint itself successors.
SCOPE_ACTIONS: dict[Scope, frozenset[Action]] = {
    Scope.READ: _VIEWER,
    Scope.DEVICES: frozenset({A.DEVICES_READ, A.DEVICES_WRITE, A.COMMANDS_SEND}),
    Scope.ENROLMENTS: frozenset({A.ENROLMENTS_READ, A.ENROLMENTS_WRITE}),
    Scope.CATALOG: frozenset({A.CATALOG_READ, A.CATALOG_WRITE}),
    Scope.ROLLOUTS: frozenset({A.ROLLOUTS_READ, A.ROLLOUTS_WRITE}),
    Scope.AUDIT: frozenset({A.AUDIT_READ}),
    Scope.TENANTS: frozenset(
        {A.TENANTS_WRITE, A.STORES_WRITE, A.CA_WRITE, A.OPERATORS_READ, A.OPERATORS_WRITE}
    ),
}

_SCOPE_ACTIONS_BY_NAME: dict[str, frozenset[Action]] = {
    scope.value: actions for scope, actions in SCOPE_ACTIONS.items()
}

#: Which roles a role may give to new operators: never a wider one than its own.
GRANTABLE: dict[Role, frozenset[Role]] = {
    Role.PLATFORM_ADMIN: frozenset(Role),
    Role.TENANT_ADMIN: frozenset({Role.TENANT_ADMIN, Role.OPERATOR, Role.VIEWER}),
    Role.OPERATOR: frozenset(),
    Role.VIEWER: frozenset(),
}


def refusal(principal: Principal, action: Action) -> str | None:
    """Why ``principal`` may not perform ``action``, or None when it may."""
    if action not in ROLE_ACTIONS[principal.role]:
        return f"role {principal.role.value} does not allow it"
    if principal.scopes is not None and not any(
        action in _SCOPE_ACTIONS_BY_NAME.get(scope, frozenset()) for scope in principal.scopes
    ):
        return f"the API token's scopes ({' '.join(sorted(principal.scopes))}) do not allow it"
    return None


def permits(principal: Principal, action: Action) -> bool:
    """Whether the policy table allows ``principal`` to perform ``action``."""
    return refusal(principal, action) is None


def tenant_scope(principal: Principal, requested: str | None, *, action: Action) -> str | None:
    """The tenant a request may act on: the principal's own, whatever the client asked.

    A tenant principal asking for another tenant is refused (not silently redirected, so a
    mistake is seen); a platform admin gets what it asked for (None: every tenant).
    """
    if principal.tenant_id is None:
        return requested
    if requested is not None and requested != principal.tenant_id:
        raise Forbidden(action.value, f"tenant {requested!r} is not yours")
    return principal.tenant_id


class _Authorize:
    """The dependency behind `require`: one instance per action."""

    def __init__(self, action: Action) -> None:
        self.action = action

    async def __call__(self, request: Request) -> Principal:
        gatekeeper = get_gatekeeper(request)
        principal = await gatekeeper.authenticate(request, action=self.action.value)
        reason = refusal(principal, self.action)
        if reason is not None:
            await gatekeeper.refused(
                request, principal=principal, action=self.action.value, reason="forbidden"
            )
            raise Forbidden(self.action.value, reason)
        return principal


class _Authenticate:
    """The dependency behind `Authenticated`: any principal, no action (``/api/auth/me``)."""

    async def __call__(self, request: Request) -> Principal:
        return await get_gatekeeper(request).authenticate(request, action="auth:self")


def require(action: Action) -> Any:
    """``Depends`` marker for routes that perform ``action``; use in ``Annotated[Principal, …]``."""
    return Depends(_Authorize(action))


Authenticated = Annotated[Principal, Depends(_Authenticate())]

DevicesRead = Annotated[Principal, require(Action.DEVICES_READ)]
DevicesWrite = Annotated[Principal, require(Action.DEVICES_WRITE)]
CommandsSend = Annotated[Principal, require(Action.COMMANDS_SEND)]
EnrolmentsRead = Annotated[Principal, require(Action.ENROLMENTS_READ)]
EnrolmentsWrite = Annotated[Principal, require(Action.ENROLMENTS_WRITE)]
CatalogRead = Annotated[Principal, require(Action.CATALOG_READ)]
CatalogWrite = Annotated[Principal, require(Action.CATALOG_WRITE)]
SalesRead = Annotated[Principal, require(Action.SALES_READ)]
RolloutsRead = Annotated[Principal, require(Action.ROLLOUTS_READ)]
RolloutsWrite = Annotated[Principal, require(Action.ROLLOUTS_WRITE)]
StoresWrite = Annotated[Principal, require(Action.STORES_WRITE)]
TenantsWrite = Annotated[Principal, require(Action.TENANTS_WRITE)]
CaWrite = Annotated[Principal, require(Action.CA_WRITE)]
OperatorsRead = Annotated[Principal, require(Action.OPERATORS_READ)]
OperatorsWrite = Annotated[Principal, require(Action.OPERATORS_WRITE)]
TokensWrite = Annotated[Principal, require(Action.TOKENS_WRITE)]
AuditRead = Annotated[Principal, require(Action.AUDIT_READ)]
