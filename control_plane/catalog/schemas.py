"""The catalog's wire shapes; money is integer minor units and a float is refused, not rounded."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt


class CatalogItem(BaseModel):
    """One sellable item as registers receive it (``edge.pos.catalog_source`` reads this)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    price_minor: StrictInt = Field(ge=0)
    tax_class: str = Field(min_length=1, max_length=16)
    department: str = Field(default="", max_length=100)
    gtins: list[str] = Field(default_factory=list, max_length=32)
    plu: str | None = Field(default=None, max_length=16)
    sku: str | None = Field(default=None, max_length=64)
    sold_by: Literal["piece", "weight"] = "piece"
    active: StrictBool = True
    version: StrictInt = 0


class ItemsIn(BaseModel):
    """Upserts and deletes applied together as one new catalog version."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(min_length=1, max_length=64)
    items: list[CatalogItem] = Field(default_factory=list, max_length=10_000)
    deletes: list[str] = Field(default_factory=list, max_length=10_000)


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
