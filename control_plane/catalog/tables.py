"""Catalog tables on the shared metadata: one row per item, one version counter per tenant.

An item row keeps its JSON body (what the register receives, money as integer minor units) and
the catalog version that last touched it; a deleted item stays as a tombstone so
``changes?since=V`` can tell registers to drop it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from control_plane.db.metadata import metadata

catalog_versions = Table(
    "catalog_versions",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

catalog_items = Table(
    "catalog_items",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, server_default="0"),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("tenant_id", "item_id"),
    Index("ix_catalog_items_tenant_version", "tenant_id", "version"),
)
