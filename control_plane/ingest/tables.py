"""Tables of the journal: every record each device sent, each signed batch head, the certificates.

Journal bodies are stored as their canonical JSON text: it is what the hash covers, so the cloud
can re-verify the chain at any time from what it stores, byte for byte. ``UNIQUE(device_id, seq)``
(the primary key) makes a resent record a no-op.

Why here: the cloud keeps what a device signed (``journal_heads``) and the certificate it signed
with (``journal_certificates``, the DER exactly as the device sent it), so an auditor re-verifies
the cloud's copy of a store's history with the fleet CA's root alone (``journal_audit``), without
trusting the registry, the control plane, or whoever runs its database.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from control_plane.db.metadata import metadata

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

# stock counts and other rare kinds are read from the journal by kind, newest first
Index("ix_journal_kind_ts", journal.c.kind, journal.c.ts)

journal_certificates = Table(
    "journal_certificates",
    metadata,
    # base64url(sha256(DER)): the ``cert_fp`` every signed batch names
    Column("fingerprint", String(43), primary_key=True),
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False, index=True),
    Column("serial", String(40), nullable=False),
    Column("der", Text, nullable=False),  # base64url, as the ``cert`` field carried it
    Column("first_seen_at", BigInteger, nullable=False),
)

journal_heads = Table(
    "journal_heads",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),  # the batch's last record
    Column("hash", String(64), nullable=False),
    Column("head_sig", String(1024), nullable=False),
    Column("cert_fp", String(43), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("device_id", "seq"),
)
