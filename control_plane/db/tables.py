"""Tables of the control plane, SQLAlchemy Core, portable between SQLite and PostgreSQL.

Journal bodies are stored as their canonical JSON text: it is what the hash covers, so the cloud
can re-verify the chain at any time from what it stores, byte for byte.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

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

journal = Table(
    "journal",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("device_id", "seq"),
)

sales = Table(
    "sales",
    metadata,
    Column("device_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("sale_id", String(64), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("store_id", String(64), nullable=False),
    Column("receipt_no", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("ts", BigInteger, nullable=False),
    PrimaryKeyConstraint("device_id", "seq"),
    Index("ix_sales_store_ts", "store_id", "ts"),
    Index("ix_sales_tenant_ts", "tenant_id", "ts"),
    Index("uq_sales_device_sale", "device_id", "sale_id", unique=True),
)

# stock counts and other rare kinds are read from the journal by kind, newest first
Index("ix_journal_kind_ts", journal.c.kind, journal.c.ts)

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

# remote commands sent to devices and, once the device answered, their results
commands = Table(
    "commands",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("args", Text, nullable=False, server_default="{}"),
    Column("created_at", BigInteger, nullable=False),
    Column("deadline_at", BigInteger, nullable=False),
    Column("completed_at", BigInteger),
    Column("ok", Boolean),
    Column("result", Text),
    Column("error", Text),
    Index("ix_commands_device_created", "device_id", "created_at"),
)
