"""Alert tables on the shared metadata (migration ``0013_reports_alerts``).

``alerts.open_key`` is ``"<device_id> <kind>"`` while the alert is open and NULL once cleared; its
UNIQUE index is what keeps one open alert per device and kind, on SQLite and PostgreSQL alike,
even with several control-plane instances evaluating at once (NULLs never collide).
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
    Text,
)

from control_plane.db.metadata import metadata

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("store_id", String(64), nullable=False),
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("open_key", String(100), nullable=True),
    Column("detail", Text, nullable=False, server_default=""),
    Column("opened_at", BigInteger, nullable=False),
    Column("seen_at", BigInteger, nullable=False),
    Column("cleared_at", BigInteger, nullable=True),
    Column("acked_at", BigInteger, nullable=True),
    Column("acked_by", String(254), nullable=True),
    Index("uq_alerts_open_key", "open_key", unique=True),
    Index("ix_alerts_tenant_opened", "tenant_id", "opened_at"),
    Index("ix_alerts_device_opened", "device_id", "opened_at"),
)

#: Agent events the alerts read (``app.crash_loop``, ``app.recovered``), newest last.
device_events = Table(
    "device_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("body", Text, nullable=False, server_default="{}"),
    Index("ix_device_events_device_kind", "device_id", "kind", "id"),
)

#: Backlog and lag per device over time, sampled by the evaluator, bounded per device.
device_history = Table(
    "device_history",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("backlog", BigInteger, nullable=False),
    Column("lag_ms", BigInteger, nullable=True),
    Column("ingest_lag_ms", BigInteger, nullable=True),
    PrimaryKeyConstraint("device_id", "at"),
)
