"""Request and response bodies of the configuration API. A PIN comes in, never goes out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from control_plane.inputs import Identifier

#: A top-level key of the document (its JSON Schema lists them).
KEY_PATTERN = r"^[a-z][a-z_]{0,63}$"
#: A store tag: lower case, digits and '-', like ids.
Tag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
#: A staff member's PIN: 4 to 8 digits. Stored only as its argon2id hash.
Pin = Annotated[str, StringConstraints(pattern=r"^[0-9]{4,8}$")]
StaffName = Annotated[
    str, StringConstraints(min_length=1, max_length=60, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SettingIn(_In):
    """A key's new value at a layer: any JSON the document's schema accepts for that key."""

    value: Any = Field(description="the section's value (see GET /api/config/schema)")


class SettingOut(BaseModel):
    """One key set at a layer, with who set it, when and the audit entry."""

    key: str
    value: Any
    set_by: str
    set_at: int
    audit_id: int | None


class LayerOut(BaseModel):
    """The keys a layer sets."""

    layer: str
    target: str
    settings: list[SettingOut]


class ChangeOut(BaseModel):
    """A stored change: the audit entry and the devices whose document got a new version."""

    layer: str
    target: str
    key: str
    audit_id: int
    devices: list[str]


class GroupIn(_In):
    """A store group: every store of the tenant tagged ``tag``; higher ``priority`` wins."""

    tenant_id: Identifier
    tag: Tag
    priority: Annotated[int, Field(strict=True, ge=-1000, le=1000)] = 0


class GroupOut(BaseModel):
    """A store group and its member stores."""

    id: str
    tenant_id: str
    tag: str
    priority: int
    stores: list[str]


class TagsIn(_In):
    """A store's tags (they put it in the groups of those tags)."""

    tags: Annotated[list[Tag], Field(max_length=16)]


class TagsOut(BaseModel):
    """A store's tags after the change."""

    store_id: str
    tags: list[str]


class ProvenanceOut(BaseModel):
    """Where a key's effective value came from."""

    layer: str
    target: str
    set_by: str
    set_at: int
    audit_id: int | None


class KeyOut(BaseModel):
    """One key of a device's document: desired value, provenance, reported hash, drift."""

    key: str
    value: Any
    provenance: ProvenanceOut
    desired_hash: str | None
    reported_hash: str | None
    match: Literal["match", "mismatch", "unknown"]
    drift_since: int | None


class DeviceConfigOut(BaseModel):
    """A device's effective desired document key by key, with what it reported."""

    device_id: str
    tenant_id: str
    store_id: str
    version: int | None
    published_version: int
    reported_version: int | None
    reported_at: int | None
    incomplete: str | None
    keys: list[KeyOut]


class DriftOut(BaseModel):
    """A drifting device: how many keys differ, since when (the oldest)."""

    device_id: str
    keys: int
    since: int


class StaffIn(_In):
    """A new cashier or manager with their PIN."""

    name: StaffName
    role: Literal["cashier", "manager"]
    pin: Pin


class PinIn(_In):
    """A new PIN."""

    pin: Pin


class StaffOut(BaseModel):
    """A staff member: never the PIN, never its hash."""

    id: str
    store_id: str
    name: str
    role: str
    created_at: int
    updated_at: int
    updated_by: str
