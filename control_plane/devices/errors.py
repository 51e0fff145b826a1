"""The registry's refusals: tenants, stores and devices. Every domain raises these same ones.

There is one "device not found" in the control plane (registry, commands and provisioning all
raise :class:`DeviceNotFound`), and one "tenant not found" (the registry's and the operators'),
so a client sees one ``reason`` for one fact.

    RegistryError
    ├── TenantNotFound        404
    ├── StoreNotFound         404  (or it belongs to another tenant)
    ├── DeviceNotFound        404
    ├── StateNotReported      404  the device exists but has not published its state yet
    ├── AlreadyExists         409  the id is taken
    └── DeviceDecommissioned  410  retired: no commands, no certificates; enrol anew
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from control_plane.problems import DomainError


class RegistryError(DomainError):
    """A registry change or look-up was refused."""

    reason = "registry_error"


@dataclass(eq=False)
class TenantNotFound(RegistryError):  # noqa: N818 - named for what was refused
    """No such tenant."""

    status = HTTPStatus.NOT_FOUND
    reason = "tenant_not_found"
    advice = "create the tenant first, or check its id"
    message = "tenant {tenant_id!r} does not exist"

    tenant_id: str


class StoreNotFound(RegistryError):  # noqa: N818 - named for what was refused
    """No such store (or, when a tenant is given, not one of that tenant's)."""

    status = HTTPStatus.NOT_FOUND
    reason = "store_not_found"

    def __init__(self, store_id: str, tenant_id: str | None = None) -> None:
        whose = "" if tenant_id is None else f" of tenant {tenant_id!r}"
        super().__init__(f"store {store_id!r}{whose} does not exist")
        self.store_id = store_id
        self.tenant_id = tenant_id


@dataclass(eq=False)
class DeviceNotFound(RegistryError):  # noqa: N818 - named for what was refused
    """No device with that id in the registry."""

    status = HTTPStatus.NOT_FOUND
    reason = "device_not_found"
    message = "device {device_id!r} does not exist"

    device_id: str


@dataclass(eq=False)
class StateNotReported(RegistryError):  # noqa: N818 - named for what was refused
    """The device is registered but has not published its ``state`` yet."""

    status = HTTPStatus.NOT_FOUND
    reason = "state_not_reported"
    advice = "the appliance reports its state once it is connected; try again later"
    message = "device {device_id!r} has not reported its state"

    device_id: str


@dataclass(eq=False)
class AlreadyExists(RegistryError):  # noqa: N818 - named in the domain's words
    """The id is taken."""

    status = HTTPStatus.CONFLICT
    reason = "already_exists"
    message = "{kind} {entity_id!r} already exists"

    kind: str
    entity_id: str


@dataclass(eq=False)
class DeviceDecommissioned(RegistryError):  # noqa: N818 - named for what was refused
    """The device was retired: it takes no commands and gets no certificate."""

    status = HTTPStatus.GONE
    reason = "device_decommissioned"
    advice = "enrol the appliance again with a new enrolment code"
    message = "device {device_id!r} was decommissioned; {advice}"

    device_id: str
