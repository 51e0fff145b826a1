"""The catalog's wire shapes; money is integer minor units and a float is refused, not rounded.

Every string is bounded and printable (``control_plane.inputs``): an item's text reaches every
register's screen and receipt, and its id a ``String(64)`` column.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from control_plane.inputs import Identifier, Utf8
from protocols.limits import ID_LENGTH, LABEL_LENGTH, PRINTABLE_PATTERN, Count


def _printable(max_length: int, *, min_length: int = 0) -> StringConstraints:
    return StringConstraints(
        min_length=min_length, max_length=max_length, pattern=PRINTABLE_PATTERN
    )


ItemId = Annotated[str, _printable(ID_LENGTH, min_length=1), Utf8]
Code = Annotated[str, _printable(ID_LENGTH, min_length=1), Utf8]


class CatalogItem(BaseModel):
    """One sellable item as registers receive it (``edge.pos.catalog_source`` reads this)."""

    model_config = ConfigDict(extra="forbid")

    id: ItemId
    name: Annotated[str, _printable(200, min_length=1), Utf8]
    price_minor: Count
    tax_class: Annotated[str, _printable(16, min_length=1), Utf8]
    department: Annotated[str, _printable(LABEL_LENGTH), Utf8] = ""
    gtins: list[Code] = Field(default_factory=list, max_length=32)
    plu: Annotated[str, _printable(16), Utf8] | None = None
    sku: Code | None = None
    sold_by: Literal["piece", "weight"] = "piece"
    active: StrictBool = True
    version: Count = 0


class ItemsIn(BaseModel):
    """Upserts and deletes applied together as one new catalog version."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: Identifier
    items: list[CatalogItem] = Field(default_factory=list, max_length=10_000)
    deletes: list[ItemId] = Field(default_factory=list, max_length=10_000)


class Snapshot(BaseModel):
    """The whole catalog at ``version``."""

    version: int
    items: list[CatalogItem]


class ChangeSet(BaseModel):
    """What moves a register from ``base_version`` to ``version``."""

    base_version: int
    version: int
    upserts: list[CatalogItem]
    deletes: list[str]


class VersionOut(BaseModel):
    """The catalog version an upsert created."""

    version: int
