"""The registry's refusals: tenants, stores and devices. Every domain raises these same ones.

There is one "device not found" in the control plane (registry, commands and provisioning all
raise :class:`DeviceNotFound`), so a client sees one ``reason`` for one fact.

    RegistryError
    ├── TenantNotFound        404
    ├── StoreNotFound         404  (or it belongs to another tenant)
    ├── DeviceNotFound        404
    ├── StateNotReported      404  the device exists but has not published its state yet
    ├── AlreadyExists         409  the id is taken
    └── DeviceDecommissioned  410  retired: no commands, no certificates; enrol anew
"""

from __future__ import annotations

from http import HTTPStatus

from control_plane.problems import DomainError


class RegistryError(DomainError):
    """A registry change or look-up was refused."""

    reason = "registry_error"


class TenantNotFound(RegistryError):  # noqa: N818 - named for what was refused
    """No such tenant."""

    status = HTTPStatus.NOT_FOUND
    reason = "tenant_not_found"

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant {tenant_id!r} does not exist")
        self.tenant_id = tenant_id


class StoreNotFound(RegistryError):  # noqa: N818 - named for what was refused
    """No such store (or, when a tenant is given, not one of that tenant's)."""

    status = HTTPStatus.NOT_FOUND
    reason = "store_not_found"

    def __init__(self, store_id: str, tenant_id: str | None = None) -> None:
        whose = "" if tenant_id is None else f" of tenant {tenant_id!r}"
        super().__init__(f"store {store_id!r}{whose} does not exist")
        self.store_id = store_id
        self.tenant_id = tenant_id


class DeviceNotFound(RegistryError):  # noqa: N818 - named for what was refused
    """No device with that id in the registry."""

    status = HTTPStatus.NOT_FOUND
    reason = "device_not_found"

    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id!r} does not exist")
        self.device_id = device_id


class StateNotReported(RegistryError):  # noqa: N818 - named for what was refused
    """The device is registered but has not published its ``state`` yet."""

    status = HTTPStatus.NOT_FOUND
    reason = "state_not_reported"
    advice = "the appliance reports its state once it is connected; try again later"

    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id!r} has not reported its state")
        self.device_id = device_id


class AlreadyExists(RegistryError):  # noqa: N818 - named in the domain's words
    """The id is taken."""

    status = HTTPStatus.CONFLICT
    reason = "already_exists"

    def __init__(self, kind: str, entity_id: str) -> None:
        super().__init__(f"{kind} {entity_id!r} already exists")
        self.kind = kind
        self.entity_id = entity_id


class DeviceDecommissioned(RegistryError):  # noqa: N818 - named for what was refused
    """The device was retired: it takes no commands and gets no certificate."""

    status = HTTPStatus.GONE
    reason = "device_decommissioned"
    advice = "enrol the appliance again with a new enrolment code"

    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id!r} was decommissioned; {self.advice}")
        self.device_id = device_id
