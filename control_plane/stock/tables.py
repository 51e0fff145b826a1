"""Stock tables on the shared metadata (migration ``0023_stock_across_stores``).

Every row here is derived from the replicated journal (:mod:`control_plane.stock.projection`)
except a level's ``low_at``, which an operator sets: the journal is the truth, these rows are
its projection, and ``stock_marks`` says how far each device's journal is in them.

* ``stock_on_hand`` — units on the shelf per store and GTIN-14; ``item_id`` when a sale named
  the item (the console's link to the catalog), ``low_at`` the low-stock threshold.
* ``stock_transfers`` / ``stock_transfer_lines`` — each transfer's two halves as they arrived;
  a line's in-transit units are its ``sent`` while the transfer is sent and not received.
* ``stock_daily_sales`` — units sold per store, GTIN and UTC day: the moving average that days
  of cover and the reorder list read.
* ``stock_marks`` — per device, the last journal seq folded into the rows above.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    text,
)

from control_plane.db.metadata import metadata

stock_on_hand = Table(
    "stock_on_hand",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("store_id", String(64), ForeignKey("stores.id"), nullable=False),
    Column("gtin", String(14), nullable=False),
    Column("item_id", String(64), nullable=True),
    Column("on_hand", BigInteger, nullable=False, server_default="0"),
    Column("low_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("store_id", "gtin"),
    Index("ix_stock_on_hand_tenant_gtin", "tenant_id", "gtin"),
    # the reorder list reads the figures with a threshold (migration 0026)
    Index(
        "ix_stock_on_hand_low",
        "store_id",
        "gtin",
        postgresql_where=text("low_at IS NOT NULL"),
        sqlite_where=text("low_at IS NOT NULL"),
    ),
)

stock_transfers = Table(
    "stock_transfers",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("transfer_id", String(64), nullable=False),
    Column("from_store", String(64), nullable=True),
    Column("to_store", String(64), nullable=True),
    Column("received_store", String(64), nullable=True),
    Column("sent_at", BigInteger, nullable=True),
    Column("received_at", BigInteger, nullable=True),
    PrimaryKeyConstraint("tenant_id", "transfer_id"),
    Index("ix_stock_transfers_tenant_sent", "tenant_id", "sent_at"),
)

stock_transfer_lines = Table(
    "stock_transfer_lines",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("transfer_id", String(64), nullable=False),
    Column("gtin", String(14), nullable=False),
    Column("sent", BigInteger, nullable=False, server_default="0"),
    Column("received", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("tenant_id", "transfer_id", "gtin"),
)

stock_daily_sales = Table(
    "stock_daily_sales",
    metadata,
    Column("store_id", String(64), ForeignKey("stores.id"), nullable=False),
    Column("gtin", String(14), nullable=False),
    Column("day", Integer, nullable=False),  # days since 1970-01-01, UTC
    Column("units", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("store_id", "gtin", "day"),
)

stock_marks = Table(
    "stock_marks",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), primary_key=True),
    Column("upto_seq", BigInteger, nullable=False),
)
