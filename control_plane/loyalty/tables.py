"""The loyalty ledger's tables (migration ``0022_loyalty_ledger``).

``loyalty_movements`` is the ledger: one row per movement, never updated. A movement from the
journal is keyed by its record (``source`` = ``<device>/<seq>/<kind>``), a manual adjustment by
its own id (``adjust/<id>``); the UNIQUE ``source`` is what makes each count exactly once even if
a projection ran twice. ``loyalty_balances`` is the running sum per customer and tenant, kept in
the same transaction as the movements (so a read never sums the ledger), with the tier the
thresholds give and the overdraft the alerts read.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, PrimaryKeyConstraint, String, Table

from control_plane.db.metadata import metadata

loyalty_movements = Table(
    "loyalty_movements",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("source", String(120), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("customer_id", String(32), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("points", BigInteger, nullable=False, server_default="0"),
    Column("credit_minor", BigInteger, nullable=False, server_default="0"),
    Column("store_id", String(64), nullable=True),
    Column("device_id", String(64), nullable=True),
    Column("sale_id", String(64), nullable=True),
    Column("actor", String(254), nullable=True),
    Column("reason", String(200), nullable=True),
    Column("at", BigInteger, nullable=False),
    Index("uq_loyalty_movements_source", "source", unique=True),
    Index("ix_loyalty_movements_customer", "tenant_id", "customer_id", "at"),
)

loyalty_balances = Table(
    "loyalty_balances",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("customer_id", String(32), nullable=False),
    Column("points", BigInteger, nullable=False, server_default="0"),
    Column("lifetime_points", BigInteger, nullable=False, server_default="0"),
    Column("credit_minor", BigInteger, nullable=False, server_default="0"),
    Column("tier", String(32), nullable=False, server_default=""),
    Column("overdraft_device_id", String(64), nullable=True),
    Column("overdraft_store_id", String(64), nullable=True),
    Column("overdrawn_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("tenant_id", "customer_id"),
    Index("ix_loyalty_balances_overdrawn", "overdrawn_at"),
)
