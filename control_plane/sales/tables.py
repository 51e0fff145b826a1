"""Tables of sales: one row per sale, written by the ingest with its journal record, read here.

Why a table beside the journal: the sales API and the reports list and sum sales by store and time
without parsing journal bodies; ``(device_id, seq)`` is the journal record the row came from, so
the row is written exactly once, in the same transaction as the record.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, PrimaryKeyConstraint, String, Table

from control_plane.db.metadata import metadata

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
    # the sale's customer, when one was attached at the till (issue 14: pseudonymous id)
    Column("customer_id", String(32), nullable=True),
    PrimaryKeyConstraint("device_id", "seq"),
    Index("ix_sales_store_ts", "store_id", "ts"),
    Index("ix_sales_tenant_ts", "tenant_id", "ts"),
    Index("uq_sales_device_sale", "device_id", "sale_id", unique=True),
    Index("ix_sales_tenant_customer", "tenant_id", "customer_id", "ts"),
)
