"""Notification tables on the shared metadata (migration ``0016_alert_notifications``).

``notification_outbox`` is a transactional outbox: a row is written with the alert it tells of
and removed from the pending set only when delivered or given up. ``lease_owner`` and
``lease_until`` are the claim: a worker sets them with a conditional UPDATE (the row must be
pending and unleased or its lease expired), so of two control-plane instances exactly one sends
a row, and a worker that died mid-delivery leaves a lease that simply runs out. UNIQUE
(channel_id, alert_id, event) makes enqueuing the same opening or clearing twice a no-op.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)

from control_plane.db.metadata import metadata

notification_channels = Table(
    "notification_channels",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("kind", String(16), nullable=False),  # webhook | email
    Column("url", Text, nullable=True),  # webhook
    Column("secret", String(200), nullable=True),  # webhook HMAC key, sealed (secret_box)
    Column("recipients", Text, nullable=True),  # email: comma-separated addresses
    Column(
        "kinds", Text, nullable=False, server_default=""
    ),  # alert kinds, comma-separated; "" all
    Column("min_severity", String(16), nullable=False, server_default="warning"),
    Column("on_clear", Boolean, nullable=False, server_default=true()),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(254), nullable=False),
    Index("ix_notification_channels_tenant", "tenant_id"),
)

notification_outbox = Table(
    "notification_outbox",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("channel_id", String(32), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("alert_id", String(64), nullable=False),
    Column("event", String(16), nullable=False),  # opened | cleared | test
    Column("payload", Text, nullable=False),  # the JSON body, fixed when enqueued (it is signed)
    Column("status", String(16), nullable=False, server_default="pending"),  # pending|sent|failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("done_at", BigInteger, nullable=True),
    UniqueConstraint("channel_id", "alert_id", "event", name="uq_notification_outbox_event"),
    Index("ix_notification_outbox_due", "status", "next_at"),
)
