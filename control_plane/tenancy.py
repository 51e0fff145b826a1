"""Which tenants' rows a request may see: one helper every service lookup goes through.

How it works: a route turns its principal into a :class:`TenantScope` (``TenantScope.of``) and
hands it to the service; the service filters every query with :meth:`TenantScope.where` on the
row's tenant column, so a row of another tenant is simply not found — a foreign device, store,
enrolment or command answers the same 404 as a missing one and the caller learns nothing about
its existence. A tenant id the client sends itself (a new store's tenant, an enrolment's) goes
through :meth:`TenantScope.claim`: accepted only when it is the principal's own (platform
admins: any), refused with the same 403 whether that tenant exists or not.

The services' ``scope`` argument defaults to :data:`EVERY_TENANT`, the system's own view (the
ingest, the demo's seed, the CLI, test set-up). Every route passes its principal's scope; the
access table (``tests/control_plane/test_access_table.py``) asks every route with an id for a
foreign tenant's object and fails on any answer but the 404 of a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, true

from control_plane.operators.errors import Forbidden
from control_plane.operators.principal import Principal


@dataclass(frozen=True, slots=True)
class TenantScope:
    """The tenant a request acts in; ``tenant_id`` None means every tenant."""

    tenant_id: str | None

    @classmethod
    def of(cls, principal: Principal) -> TenantScope:
        """The principal's scope: its tenant, or every tenant for a platform admin."""
        return cls(principal.tenant_id)

    def sees(self, tenant_id: str) -> bool:
        """Whether a row of ``tenant_id`` is visible in this scope."""
        return self.tenant_id is None or self.tenant_id == tenant_id

    def where(self, column: ColumnElement[str]) -> ColumnElement[bool]:
        """The WHERE clause that keeps a query to this scope (``column``: the row's tenant)."""
        return true() if self.tenant_id is None else column == self.tenant_id

    def claim(self, requested: str, *, action: str) -> str:
        """A client-supplied tenant id, accepted only when it is in this scope.

        Refused the same way whether the tenant exists or not, so a guess tells nothing.
        """
        if not self.sees(requested):
            raise Forbidden(action, f"tenant {requested!r} is not yours")
        return requested


#: The scope of the system itself (ingest, seeds, CLI): no tenant filter.
EVERY_TENANT = TenantScope(None)
