"""Tables of the registry: tenants, their stores (and tags), devices and what each reported.

Times are integer milliseconds since the epoch (UTC). A device's row carries its presence and its
replication figures, updated by the ingest and the presence watcher; ``device_state`` is the last
retained ``sf.state`` it published.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from control_plane.db.metadata import metadata

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False, server_default="EUR"),
    Column("created_at", BigInteger, nullable=False),
)

stores = Table(
    "stores",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("created_at", BigInteger, nullable=False),
)

# A store's tags name the groups it belongs to: configuration layers ("store group") and rollout
# targets both select stores by tag, so the tags live beside the store, once.
store_tags = Table(
    "store_tags",
    metadata,
    Column("store_id", String(64), ForeignKey("stores.id"), nullable=False),
    Column("tag", String(64), nullable=False),
    PrimaryKeyConstraint("store_id", "tag"),
    Index("ix_store_tags_tag", "tag"),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("store_id", String(64), ForeignKey("stores.id"), nullable=False, index=True),
    Column("register_name", String(100), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("decommissioned_at", BigInteger),
    # presence, from the retained status topic and its last will
    Column("online", Boolean, nullable=False, server_default="0"),
    Column("boot_id", String(64), nullable=False, server_default=""),
    Column("versions", Text, nullable=False, server_default="{}"),
    Column("last_seen_at", BigInteger),
    # replication, from telemetry (appliance side) and ingest (cloud side)
    Column("backlog", BigInteger, nullable=False, server_default="0"),
    Column("reported_seq", BigInteger, nullable=False, server_default="0"),
    Column("lag_ms", BigInteger),
    Column("hwm", BigInteger, nullable=False, server_default="0"),
    Column("head_hash", String(64), nullable=False, server_default="0" * 64),
    Column("last_ingest_at", BigInteger),
    Column("ingest_lag_ms", BigInteger),
    # a broken chain stays flagged until an operator has looked at it
    Column("chain_ok", Boolean, nullable=False, server_default="1"),
    Column("chain_alerts", Integer, nullable=False, server_default="0"),
    Column("chain_detail", Text),
)

# the latest ``sf.state`` each device published (retained): what it runs, how its hardware is
device_state = Table(
    "device_state",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), primary_key=True),
    Column("config_version", BigInteger, nullable=False, server_default="0"),
    Column("app_release", String(100), nullable=False, server_default=""),
    Column("slot", String(16), nullable=False, server_default=""),
    Column("peripherals", Text, nullable=False, server_default="{}"),
    Column("received_at", BigInteger, nullable=False),
)
