"""Resolution of configuration layers into one effective document per device, with provenance.

How it works: a *setting* is one key's value at one layer. The layers, lowest first::

    platform (the schema's defaults) → tenant → group (by store tag) → store → register

For each key the setting with the highest precedence wins: the higher layer, and between two
store groups of the same store, the higher ``priority``, then the group id that sorts first (a
rule a person can predict, and never the order rows came back from the database). Deleting a
setting simply removes it, so the key falls back to the next one down. Every key of the result
carries its :class:`Provenance`: which layer, who set it, when, and the audit entry.

Keys are the document's top-level keys (``printer``, ``quick_keys``, ``staff`` …): a layer sets
a whole section. That is the unit the appliance hashes and reports, so drift and provenance
name the same thing. This module is pure: no I/O, no database, so the property tests can drive
it with thousands of random layer sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Layer(StrEnum):
    """Where a setting lives; the value names the layer in the API and the console."""

    PLATFORM = "platform"
    TENANT = "tenant"
    GROUP = "group"
    STORE = "store"
    REGISTER = "register"

    @property
    def rank(self) -> int:
        """Higher wins."""
        return _RANK[self]


_RANK = {layer: rank for rank, layer in enumerate(Layer)}

#: The layers an operator edits (platform defaults come from the schema).
EDITABLE = (Layer.TENANT, Layer.GROUP, Layer.STORE, Layer.REGISTER)


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """Where a key's effective value came from."""

    layer: Layer
    target: str  # the tenant, group, store or device id; "" for the platform defaults
    set_by: str = "platform"
    set_at: int = 0
    audit_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The provenance as the API, the database and the console keep it."""
        return {
            "layer": self.layer.value,
            "target": self.target,
            "set_by": self.set_by,
            "set_at": self.set_at,
            "audit_id": self.audit_id,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Provenance:
        """Read back what `as_json` wrote."""
        return cls(
            layer=Layer(raw["layer"]),
            target=str(raw["target"]),
            set_by=str(raw["set_by"]),
            set_at=int(raw["set_at"]),
            audit_id=None if raw.get("audit_id") is None else int(raw["audit_id"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """One key's value at one layer. ``priority`` orders store groups (higher wins)."""

    layer: Layer
    target: str
    key: str
    value: Any
    set_by: str
    set_at: int
    audit_id: int | None = None
    priority: int = 0
    # made once: resolving 10,000 registers compares and copies these for every key
    _precedence: tuple[int, int, str] = field(init=False, repr=False, compare=False)
    _provenance: Provenance = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_precedence", (-self.layer.rank, -self.priority, self.target))
        origin = Provenance(
            layer=self.layer,
            target=self.target,
            set_by=self.set_by,
            set_at=self.set_at,
            audit_id=self.audit_id,
        )
        object.__setattr__(self, "_provenance", origin)

    def precedence(self) -> tuple[int, int, str]:
        """Smaller is stronger: higher layer, then higher priority, then the id sorting first."""
        return self._precedence

    def provenance(self) -> Provenance:
        """Where this setting came from."""
        return self._provenance


@dataclass(frozen=True, slots=True)
class Effective:
    """A device's effective desired document and where each of its keys came from."""

    document: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Provenance] = field(default_factory=dict)


PLATFORM_DEFAULT = Provenance(layer=Layer.PLATFORM, target="")


def resolve(defaults: Mapping[str, Any], settings: Iterable[Setting]) -> Effective:
    """The effective document: ``defaults`` overlaid by the strongest setting of each key.

    ``settings`` are those that apply to one device (its tenant, the groups its store is in, its
    store, itself); the caller picks them. Deterministic whatever their order.
    """
    winners: dict[str, Setting] = {}
    for setting in settings:
        held = winners.get(setting.key)
        if held is None or setting._precedence < held._precedence:
            winners[setting.key] = setting
    document = dict(defaults)
    provenance = dict.fromkeys(defaults, PLATFORM_DEFAULT)
    for key, winner in winners.items():
        document[key] = winner.value
        provenance[key] = winner._provenance
    return Effective(document=document, provenance=provenance)


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """Which layers apply to a device: its tenant, store, the groups of its store, itself."""

    device_id: str
    tenant_id: str
    store_id: str
    groups: frozenset[str] = frozenset()

    def applies(self, setting: Setting) -> bool:
        """Whether ``setting`` is one of this device's layers."""
        match setting.layer:
            case Layer.PLATFORM:
                return True
            case Layer.TENANT:
                return setting.target == self.tenant_id
            case Layer.GROUP:
                return setting.target in self.groups
            case Layer.STORE:
                return setting.target == self.store_id
            case Layer.REGISTER:
                return setting.target == self.device_id


class LayerIndex:
    """Settings grouped by layer and target, so resolving 10,000 devices reads each once."""

    def __init__(self, settings: Iterable[Setting]) -> None:
        self._by_layer: dict[tuple[Layer, str], list[Setting]] = {}
        for setting in settings:
            self._by_layer.setdefault((setting.layer, setting.target), []).append(setting)

    def of(self, placement: Placement) -> list[Setting]:
        """The settings of ``placement``'s layers."""
        found: list[Setting] = list(self._by_layer.get((Layer.PLATFORM, ""), ()))
        found += self._by_layer.get((Layer.TENANT, placement.tenant_id), ())
        for group in placement.groups:
            found += self._by_layer.get((Layer.GROUP, group), ())
        found += self._by_layer.get((Layer.STORE, placement.store_id), ())
        found += self._by_layer.get((Layer.REGISTER, placement.device_id), ())
        return found

    def resolve(self, placement: Placement, defaults: Mapping[str, Any]) -> Effective:
        """`resolve` over ``placement``'s layers."""
        return resolve(defaults, self.of(placement))
