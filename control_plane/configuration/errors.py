"""The configuration domain's refusals; the registry's (tenant, store, device not found) too.

ConfigurationError
├── GroupNotFound          404  no such store group (or another tenant's)
├── SettingNotFound        404  the key is not set at that layer: nothing to delete
├── StaffNotFound          404  no such staff member at that store
├── LayerVersionNotFound   404  the layer has no such version to restore
├── ChangeNotFound         404  no such change through waves (or another tenant's)
├── NothingToRestore       409  the layer already is as it was at that version
├── ChangeStateRefused     409  pause, resume or abort does not apply to the change as it is
├── SupportAccessRefused   403  only a tenant admin opens or closes support's SSH into a box
├── UnknownKey             422  not a section of the document
├── KeyManagedElsewhere    422  ``staff`` is edited through the staff API
└── InvalidConfiguration   422  the change makes a device's document invalid or too big
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from control_plane.problems import DomainError


class ConfigurationError(DomainError):
    """A configuration change or look-up was refused."""

    reason = "configuration_error"


@dataclass(eq=False)
class GroupNotFound(ConfigurationError):  # noqa: N818 - named for what was refused
    """No such store group in the operator's tenant."""

    status = HTTPStatus.NOT_FOUND
    reason = "group_not_found"
    message = "store group {group_id!r} does not exist"

    group_id: str


@dataclass(eq=False)
class SettingNotFound(ConfigurationError):  # noqa: N818 - named for what was refused
    """The key is not set at this layer, so there is nothing to delete."""

    status = HTTPStatus.NOT_FOUND
    reason = "setting_not_found"
    advice = "GET the layer's settings to see which keys it sets"
    message = "{key!r} is not set at {layer} {target!r}"

    layer: str
    target: str
    key: str


@dataclass(eq=False)
class StaffNotFound(ConfigurationError):  # noqa: N818 - named for what was refused
    """No such staff member at the store."""

    status = HTTPStatus.NOT_FOUND
    reason = "staff_not_found"
    message = "staff member {staff_id!r} does not exist at this store"

    staff_id: str


@dataclass(eq=False)
class LayerVersionNotFound(ConfigurationError):  # noqa: N818 - named for what was refused
    """The layer has no such version (its history starts with the first change it records)."""

    status = HTTPStatus.NOT_FOUND
    reason = "layer_version_not_found"
    advice = "GET the layer's settings/history to see its versions"
    message = "{layer} {target!r} has no version {version}"

    layer: str
    target: str
    version: int


@dataclass(eq=False)
class NothingToRestore(ConfigurationError):  # noqa: N818 - named for what was refused
    """A rollback to a version whose keys the layer already has: no new version is made."""

    status = HTTPStatus.CONFLICT
    reason = "nothing_to_restore"
    advice = "the layer already sets what that version set; nothing was changed"
    message = "{layer} {target!r} already is as it was at version {version}"

    layer: str
    target: str
    version: int


@dataclass(eq=False)
class ChangeNotFound(ConfigurationError):  # noqa: N818 - named for what was refused
    """No change through waves of that id in the operator's tenant."""

    status = HTTPStatus.NOT_FOUND
    reason = "config_change_not_found"
    advice = "GET /api/config/changes lists the changes published through waves"
    message = "configuration change {change_id!r} does not exist"

    change_id: str


@dataclass(eq=False)
class ChangeStateRefused(ConfigurationError):  # noqa: N818 - named for what was refused
    """The action does not apply to the change's status (resume a completed change …)."""

    status = HTTPStatus.CONFLICT
    reason = "config_change_state_refused"
    advice = (
        "GET the change to see its status; pause a running one, resume a paused one, abort either"
    )
    message = "cannot {verb} configuration change {change_id!r}: it is {current}"

    change_id: str
    verb: str
    current: str


@dataclass(eq=False)
class UnknownKey(ConfigurationError):  # noqa: N818 - named for what was refused
    """The key is not a top-level section of the document."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    reason = "unknown_key"
    advice = "GET /api/config/schema lists the document's keys"
    message = "{key!r} is not a key of the store configuration"

    key: str


@dataclass(eq=False)
class KeyManagedElsewhere(ConfigurationError):  # noqa: N818 - named for what was refused
    """``staff`` is written by the staff API (it hashes PINs); layers do not set it by hand."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    reason = "key_managed_elsewhere"
    advice = "add, change or remove cashiers and managers at /api/config/stores/{store_id}/staff"
    message = "{key!r} is managed through the staff API, not set on a layer"

    key: str


@dataclass(eq=False)
class SupportAccessRefused(ConfigurationError):  # noqa: N818 - named for what was refused
    """``support`` opens SSH into a store's box: an operator may configure the store, not that."""

    status = HTTPStatus.FORBIDDEN
    reason = "support_access_refused"
    advice = "ask a tenant admin to turn support's SSH on or off"
    message = "{key!r} opens support's SSH into the store's appliances: {why}"

    key: str
    why: str


class InvalidConfiguration(ConfigurationError):  # noqa: N818 - named for what was refused
    """The change would make at least one device's effective document invalid; nothing stored.

    ``key`` is the section at fault, ``path`` the JSON path in the document, ``devices`` how
    many devices the change would have broken (``example`` one of them).
    """

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    reason = "invalid_configuration"
    advice = "correct the value at the path named and send it again; nothing was changed"

    def __init__(self, *, key: str, path: str, why: str, devices: int, example: str) -> None:
        others = f" and {devices - 1} more" if devices > 1 else ""
        super().__init__(
            f"key {key!r} refused: {path}: {why} (the effective document of {example}{others})"
        )
        self.key = key
        self.path = path
        self.why = why
