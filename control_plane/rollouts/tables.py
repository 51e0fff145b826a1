"""Rollout tables on the shared metadata: rollouts, their devices, the devices' history, the
driver's lease, and each store's maintenance window (store tags are ``devices.tables.store_tags``).

A rollout keeps its waves and deadlines as JSON (they are read whole, never queried). Each
device of a rollout is one row in ``rollout_devices`` with its wave, its state, the moment it
entered that state and its deadline; every change of state is appended to
``rollout_device_history`` with its reason. ``rollout_leases`` holds at most one row per rollout:
the instance driving it and until when.
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
    and_,
)

from control_plane.db.metadata import metadata

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("release_version", String(100), ForeignKey("releases.version"), nullable=False),
    Column("name", String(200), nullable=False, server_default=""),
    Column("target", Text, nullable=False),
    Column("waves", Text, nullable=False),
    Column("deadlines", Text, nullable=False),
    Column("rate_per_minute", Integer, nullable=False),
    Column("on_silence", String(16), nullable=False, server_default="time_out"),
    Column("force", Boolean, nullable=False, server_default="0"),
    Column("maintenance_window", String(11)),
    Column("status", String(16), nullable=False),
    Column("current_wave", Integer, nullable=False, server_default="0"),
    Column("wave_reached_at", BigInteger),
    Column("reason", Text, nullable=False, server_default=""),
    Column("created_by", String(254), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

rollout_devices = Table(
    "rollout_devices",
    metadata,
    Column("rollout_id", String(32), ForeignKey("rollouts.id"), nullable=False),
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("store_id", String(64), nullable=False),
    Column("wave", Integer, nullable=False),
    Column("state", String(24), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("previous_release", String(100), nullable=False, server_default=""),
    Column("state_at", BigInteger, nullable=False),
    Column("deadline_at", BigInteger),
    Column("notified_at", BigInteger),
    Column("published_at", BigInteger),
    Column("reported_succeeded", Boolean, nullable=False, server_default="0"),
    Column("rolled_back_at", BigInteger),
    Column("attempts", Integer, nullable=False, server_default="1"),
    PrimaryKeyConstraint("rollout_id", "device_id"),
    Index("ix_rollout_devices_device_id", "device_id"),
    # The driver's tick (migration 0017): devices due for settling (state, deadline), a wave's
    # counts (wave, state), the rate's last minute (notified_at), any left to publish (partial).
    Index("ix_rollout_devices_rollout_id_state_deadline_at", "rollout_id", "state", "deadline_at"),
    Index("ix_rollout_devices_rollout_id_wave_state", "rollout_id", "wave", "state"),
    Index("ix_rollout_devices_rollout_id_notified_at", "rollout_id", "notified_at"),
)
_UNPUBLISHED = and_(
    rollout_devices.c.notified_at.is_not(None),
    rollout_devices.c.published_at.is_(None),
    rollout_devices.c.rolled_back_at.is_(None),
)
Index(
    "ix_rollout_devices_unpublished",
    rollout_devices.c.rollout_id,
    # published_at (NULL in every entry) makes it two equalities to SQLite's planner, which
    # has no statistics and otherwise prefers the range of (rollout_id, notified_at).
    rollout_devices.c.published_at,
    sqlite_where=_UNPUBLISHED,
    postgresql_where=_UNPUBLISHED,
)

rollout_device_history = Table(
    "rollout_device_history",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("rollout_id", String(32), nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("state", String(24), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("at", BigInteger, nullable=False),
    Index("ix_rollout_device_history_rollout_id_device_id", "rollout_id", "device_id"),
)

rollout_leases = Table(
    "rollout_leases",
    metadata,
    Column("rollout_id", String(32), ForeignKey("rollouts.id"), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)


store_windows = Table(
    "store_windows",
    metadata,
    Column("store_id", String(64), ForeignKey("stores.id"), primary_key=True),
    Column("maintenance_window", String(11), nullable=False),
)
