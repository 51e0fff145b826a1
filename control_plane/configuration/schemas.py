"""Request and response bodies of the configuration API. A PIN comes in, never goes out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from control_plane.configuration.staged import DEFAULT_DEADLINE_S, DEFAULT_HEALTH_S, DEFAULT_WAVES
from control_plane.inputs import Identifier
from control_plane.rollouts.model import WaveIn
from protocols.limits import INT64_MAX

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


class DriftCountsOut(BaseModel):
    """The fleet's drift counted: registers in scope, drifting, per key, the oldest drift."""

    registers: int
    drifting: int
    keys: dict[str, int] = Field(description="key -> the registers on which it drifts")
    oldest_since: int | None = Field(description="when the oldest drift was first seen (ms)")


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


# -- preview, history, rollback -------------------------------------------------------------------

SectionKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]


class PreviewIn(_In):
    """A change to preview: keys to set and keys to delete at the layer, or a version of the
    layer to restore (``restore``, alone)."""

    values: Annotated[dict[SectionKey, Any], Field(max_length=32)] = Field(
        default_factory=dict, description="key → the value it would be set to"
    )
    delete: Annotated[list[SectionKey], Field(max_length=32)] = Field(
        default_factory=list, description="keys the layer would no longer set"
    )
    restore: Annotated[int, Field(strict=True, ge=1, le=INT64_MAX)] | None = Field(
        default=None, description="preview a rollback to this version of the layer"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> PreviewIn:
        if self.restore is not None and (self.values or self.delete):
            raise ValueError("give either values/delete or restore, not both")
        if self.restore is None and not (self.values or self.delete):
            raise ValueError("nothing to preview: give values, delete or restore")
        return self


class KeyDiffOut(BaseModel):
    """One key of a device's document that would change, old → new (short JSON, no secrets)."""

    key: str
    before: str
    after: str


class DeviceDiffOut(BaseModel):
    """A device whose effective document would get a new version (``version`` None: its first)."""

    device_id: str
    version: int | None
    next_version: int
    keys: list[KeyDiffOut]


class BrokenOut(BaseModel):
    """A device whose document the change would make invalid."""

    device_id: str
    key: str
    path: str
    reason: str


class PreviewOut(BaseModel):
    """What the change would do; nothing was stored. ``refusal``: the 422 the change would get."""

    layer: str
    target: str
    keys: list[str]
    changed: list[DeviceDiffOut]
    unchanged: list[str]
    invalid: list[BrokenOut]
    refusal: str | None


class RollbackIn(_In):
    """The version of the layer to restore."""

    version: Annotated[int, Field(strict=True, ge=1, le=INT64_MAX)]


class RestoredOut(BaseModel):
    """A rollback made: the layer's new version and the one it restored."""

    layer: str
    target: str
    version: int
    restored: int
    keys: list[str]
    audit_id: int
    devices: list[str]


class KeyChangeOut(BaseModel):
    """A key a layer version changed (``was_set``/``is_set`` False: not set on that side)."""

    key: str
    before: Any
    after: Any
    was_set: bool
    is_set: bool


class LayerVersionOut(BaseModel):
    """One version of a layer: who, when, the audit entry, what changed, the whole layer."""

    layer: str
    target: str
    version: int
    kind: Literal["set", "delete", "rollback"]
    restored: int | None
    actor: str
    at: int
    audit_id: int | None
    changes: list[KeyChangeOut]
    settings: dict[str, Any]


class DeviceVersionOut(BaseModel):
    """One version of a device's effective document and the change that made it."""

    version: int
    digest: str
    keys: list[str] | None
    layer: str | None
    target: str | None
    layer_version: int | None
    actor: str | None
    audit_id: int | None
    at: int


# -- changes through waves (staged.py) -------------------------------------------------------


class StagedIn(_In):
    """A key's new value published through waves: the canary first, the rest as gates allow."""

    value: Any = Field(description="the section's value (see GET /api/config/schema)")
    waves: Annotated[list[WaveIn], Field(min_length=1, max_length=20)] = Field(
        default_factory=lambda: list(DEFAULT_WAVES),
        description="the rollouts' waves: devices or cumulative percent, soak_s, "
        "success_percent, failure_percent, min_executed, max_failures; default a canary of 1 "
        "(soak 60 s), 25 %, then the rest",
    )
    health_s: Annotated[int, Field(ge=0, le=86_400)] = Field(
        DEFAULT_HEALTH_S, description="seconds a register stays healthy at the version to succeed"
    )
    deadline_s: Annotated[int, Field(ge=1, le=7 * 86_400)] = Field(
        DEFAULT_DEADLINE_S, description="seconds a register has to report the version"
    )


class StagedDeviceOut(BaseModel):
    """One register of a change through waves: its wave, state, why and versions."""

    device_id: str
    wave: int
    state: str
    detail: str
    version: int | None
    state_at: int
    notified_at: int | None
    applied_at: int | None
    rolled_back_to: int | None
    rolled_back_at: int | None


class StagedWaveOut(BaseModel):
    """One wave: its rules, size and registers by state."""

    number: int
    spec: dict[str, Any]
    size: int
    counts: dict[str, int]


class StagedChangeOut(BaseModel):
    """A change through waves: what, where, its status and why, waves and registers."""

    id: str
    tenant_id: str
    layer: str
    target: str
    key: str
    value: Any
    status: str
    reason: str
    current_wave: int
    health_s: int
    deadline_s: int
    created_by: str
    created_at: int
    updated_at: int
    counts: dict[str, int]
    waves: list[StagedWaveOut]
    devices: list[StagedDeviceOut]
