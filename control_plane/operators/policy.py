"""Who may do what: ONE table of role → actions and token scope → actions, enforced in one place.

How it works: a route declares the action it performs with an `Annotated` alias built by
`require` (``principal: policy.DevicesWrite``). The dependency asks the gatekeeper for the
principal (session cookie + CSRF token on unsafe methods, or a bearer API token; rate-limited per
client), then checks `permits`: the role must allow the action and, for a token, one of its
scopes must too. A refusal is written to the audit log and raised as a domain error (401/403).
Console pages use `page` instead: the same check, but a visitor who is not logged in is sent to
``/login`` (303). Tenant scoping is the principal's: `control_plane.tenancy.TenantScope` (and
`tenant_scope` here) turns a client-supplied tenant id into one the principal may act on, so no
query takes a tenant from the client alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request

from control_plane.operators import audit, change_audit
from control_plane.operators.errors import Forbidden, LoginRequired, Unauthenticated
from control_plane.operators.gatekeeper import get_gatekeeper
from control_plane.operators.principal import Principal, Role
from control_plane.problems import DomainError
from control_plane.tenancy import TenantScope


class Action(StrEnum):
    """Everything an operator can be allowed to do; ``noun:verb``."""

    DEVICES_READ = "devices:read"
    DEVICES_WRITE = "devices:write"  # decommission, replace, rename
    COMMANDS_SEND = "commands:send"
    ENROLMENTS_READ = "enrolments:read"  # list, without secrets
    ENROLMENTS_WRITE = "enrolments:write"  # create, revoke, reprint (the sheet holds the secret)
    CATALOG_READ = "catalog:read"
    CATALOG_WRITE = "catalog:write"
    STOCK_READ = "stock:read"  # on-hand across stores, transfers, reorder list, CSV (issue 14)
    STOCK_WRITE = "stock:write"  # low-stock thresholds
    SALES_READ = "sales:read"
    ROLLOUTS_READ = "rollouts:read"
    ROLLOUTS_WRITE = "rollouts:write"  # create, start, pause, resume, abort, retry
    RELEASES_PUBLISH = "releases:publish"  # upload a signed bundle (releases are platform-wide)
    STORES_WRITE = "stores:write"
    TENANTS_WRITE = "tenants:write"
    CA_WRITE = "ca:write"  # CRL refresh
    OPERATORS_READ = "operators:read"
    OPERATORS_WRITE = "operators:write"
    TOKENS_WRITE = "tokens:write"  # one's own API tokens
    AUDIT_READ = "audit:read"
    REPORTS_READ = "reports:read"  # store owners' reports, their charts and CSV (issue 13)
    ALERTS_READ = "alerts:read"  # fleet alerts and lag/backlog history
    ALERTS_ACK = "alerts:ack"  # acknowledge an alert (audited); it still clears by itself
    # alert notification channels: webhook URLs (their signing secrets), e-mail recipients
    NOTIFICATIONS_MANAGE = "notifications:manage"
    CONFIG_READ = "config:read"  # layers, effective documents with provenance, drift, staff list
    CONFIG_WRITE = "config:write"  # store and register layers (issue 12)
    TENANT_CONFIG_WRITE = "tenant_config:write"  # tenant layer, store groups, store tags
    STAFF_WRITE = "staff:write"  # a store's cashiers and managers, their PINs
    # customers (issue 14): profiles hold personal data, so viewers see none of it; a GDPR
    # export hands all of one person's data out and an erasure cannot be undone: tenant admins
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"  # create a customer, change contact details or consent
    CUSTOMERS_EXPORT = "customers:export"
    CUSTOMERS_ERASE = "customers:erase"
    # a manual change of a customer's points or store credit is money: tenant admins (audited)
    LOYALTY_ADJUST = "loyalty:adjust"


class Scope(StrEnum):
    """What an API token may be limited to; it never adds to its owner's role."""

    READ = "read"
    DEVICES = "devices"
    ENROLMENTS = "enrolments"
    CATALOG = "catalog"
    ROLLOUTS = "rollouts"
    AUDIT = "audit"
    TENANTS = "tenants"
    CONFIG = "config"


A = Action
_VIEWER = frozenset(
    {A.DEVICES_READ, A.ENROLMENTS_READ, A.CATALOG_READ, A.SALES_READ, A.ROLLOUTS_READ}
    | {A.REPORTS_READ, A.ALERTS_READ, A.CONFIG_READ, A.STOCK_READ}
)
_OPERATOR = _VIEWER | {
    A.DEVICES_WRITE,
    A.COMMANDS_SEND,
    A.ENROLMENTS_WRITE,
    A.CATALOG_WRITE,
    A.STOCK_WRITE,
    A.TOKENS_WRITE,
    A.ROLLOUTS_WRITE,
    A.ALERTS_ACK,
    A.CONFIG_WRITE,
    A.STAFF_WRITE,
    A.CUSTOMERS_READ,
    A.CUSTOMERS_WRITE,
}
_TENANT_ADMIN = _OPERATOR | {
    A.TENANT_CONFIG_WRITE,
    A.STORES_WRITE,
    A.OPERATORS_READ,
    A.OPERATORS_WRITE,
    A.AUDIT_READ,
    A.NOTIFICATIONS_MANAGE,
    A.CUSTOMERS_EXPORT,
    A.CUSTOMERS_ERASE,
    A.LOYALTY_ADJUST,
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
    Scope.DEVICES: frozenset(
        {A.DEVICES_READ, A.DEVICES_WRITE, A.COMMANDS_SEND, A.ALERTS_READ, A.ALERTS_ACK}
    ),
    Scope.ENROLMENTS: frozenset({A.ENROLMENTS_READ, A.ENROLMENTS_WRITE}),
    Scope.CATALOG: frozenset({A.CATALOG_READ, A.CATALOG_WRITE, A.STOCK_READ, A.STOCK_WRITE}),
    Scope.ROLLOUTS: frozenset({A.ROLLOUTS_READ, A.ROLLOUTS_WRITE, A.RELEASES_PUBLISH}),
    Scope.AUDIT: frozenset({A.AUDIT_READ}),
    Scope.CONFIG: frozenset({A.CONFIG_READ, A.CONFIG_WRITE, A.TENANT_CONFIG_WRITE, A.STAFF_WRITE}),
    Scope.TENANTS: frozenset(
        {A.TENANTS_WRITE, A.STORES_WRITE, A.CA_WRITE, A.OPERATORS_READ, A.OPERATORS_WRITE}
        | {A.NOTIFICATIONS_MANAGE}
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
    mistake is seen); a platform admin gets what it asked for (None: every tenant). The rule is
    `control_plane.tenancy.TenantScope.claim`'s, the one every domain uses.
    """
    if requested is None:
        return principal.tenant_id
    return TenantScope.of(principal).claim(requested, action=action.value)


#: The action name of a route open to any authenticated principal (``/api/auth/me``).
AUTHENTICATED = "auth:self"


class Guard:
    """A dependency that admits a principal for ``action``: what makes a route guarded.

    `control_plane.operators.guards.guard_of` finds these in a route's dependencies.
    """

    action: str


class _Authorize(Guard):
    """The dependency behind `require`: one instance per action.

    It yields the principal and, for a change (an unsafe method), writes the change's audit
    entry once the route finished: ``ok``, or ``refused`` with the domain error's reason
    (`control_plane.operators.change_audit`). `require` runs it with ``scope="function"``, so
    the entry is written before the answer is sent.
    """

    def __init__(self, action: Action) -> None:
        self.action = action.value

    async def admit(self, request: Request) -> Principal:
        """The principal, if the policy table lets it perform this action; else refused."""
        gatekeeper = get_gatekeeper(request)
        principal = await gatekeeper.authenticate(request, action=self.action)
        reason = refusal(principal, Action(self.action))
        if reason is not None:
            await gatekeeper.refused(
                request, principal=principal, action=self.action, reason="forbidden"
            )
            raise Forbidden(self.action, reason)
        return principal

    async def __call__(self, request: Request) -> AsyncIterator[Principal]:
        principal = await self.admit(request)
        if not change_audit.is_change(request.method):
            yield principal
            return
        own_entry = audit.watch()  # the route may write its own entry (operators, rollouts …)
        tenant = await change_audit.tenant_before_delete(request, principal)
        try:
            yield principal
        except DomainError as err:
            if not own_entry.recorded:
                await change_audit.record_change(
                    request, principal, action=self.action, refused=err.reason, tenant_before=tenant
                )
            raise
        if not own_entry.recorded:
            await change_audit.record_change(
                request, principal, action=self.action, tenant_before=tenant
            )


class _Page(_Authorize):
    """The dependency behind `page`: `require` for a console page, where a visitor who is not
    logged in (or whose session expired) is sent to the login page instead of refused."""

    async def admit(self, request: Request) -> Principal:
        try:
            return await super().admit(request)
        except Unauthenticated as err:
            raise LoginRequired(request.url.path, request.url.query) from err


class _Authenticate(Guard):
    """The dependency behind `Authenticated`: any principal, no action (``/api/auth/me``)."""

    action = AUTHENTICATED

    async def __call__(self, request: Request) -> Principal:
        return await get_gatekeeper(request).authenticate(request, action=self.action)


def require(action: Action) -> Any:
    """``Depends`` marker for routes that perform ``action``; use in ``Annotated[Principal, …]``."""
    return Depends(_Authorize(action), scope="function")


def page(action: Action) -> Any:
    """`require` for console pages: not logged in answers a redirect to ``/login``."""
    return Depends(_Page(action), scope="function")


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
ReleasesPublish = Annotated[Principal, require(Action.RELEASES_PUBLISH)]
StoresWrite = Annotated[Principal, require(Action.STORES_WRITE)]
TenantsWrite = Annotated[Principal, require(Action.TENANTS_WRITE)]
CaWrite = Annotated[Principal, require(Action.CA_WRITE)]
OperatorsRead = Annotated[Principal, require(Action.OPERATORS_READ)]
OperatorsWrite = Annotated[Principal, require(Action.OPERATORS_WRITE)]
TokensWrite = Annotated[Principal, require(Action.TOKENS_WRITE)]
AuditRead = Annotated[Principal, require(Action.AUDIT_READ)]
ConfigRead = Annotated[Principal, require(Action.CONFIG_READ)]
ConfigWrite = Annotated[Principal, require(Action.CONFIG_WRITE)]
TenantConfigWrite = Annotated[Principal, require(Action.TENANT_CONFIG_WRITE)]
StaffWrite = Annotated[Principal, require(Action.STAFF_WRITE)]
ReportsRead = Annotated[Principal, require(Action.REPORTS_READ)]
AlertsRead = Annotated[Principal, require(Action.ALERTS_READ)]
StockRead = Annotated[Principal, require(Action.STOCK_READ)]
StockWrite = Annotated[Principal, require(Action.STOCK_WRITE)]
AlertsAck = Annotated[Principal, require(Action.ALERTS_ACK)]
NotificationsManage = Annotated[Principal, require(Action.NOTIFICATIONS_MANAGE)]
CustomersRead = Annotated[Principal, require(Action.CUSTOMERS_READ)]
CustomersWrite = Annotated[Principal, require(Action.CUSTOMERS_WRITE)]
CustomersExport = Annotated[Principal, require(Action.CUSTOMERS_EXPORT)]
CustomersErase = Annotated[Principal, require(Action.CUSTOMERS_ERASE)]
LoyaltyAdjust = Annotated[Principal, require(Action.LOYALTY_ADJUST)]

DevicesPage = Annotated[Principal, page(Action.DEVICES_READ)]
EnrolmentsPage = Annotated[Principal, page(Action.ENROLMENTS_READ)]
RolloutsPage = Annotated[Principal, page(Action.ROLLOUTS_READ)]
ReportsPage = Annotated[Principal, page(Action.REPORTS_READ)]
AlertsPage = Annotated[Principal, page(Action.ALERTS_READ)]
StockPage = Annotated[Principal, page(Action.STOCK_READ)]
ConfigPage = Annotated[Principal, page(Action.CONFIG_READ)]
CustomersPage = Annotated[Principal, page(Action.CUSTOMERS_READ)]
CustomersErasePage = Annotated[Principal, page(Action.CUSTOMERS_ERASE)]
