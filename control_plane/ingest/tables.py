"""Tables of the signed journal: each stored batch head's signature, and the signing certificates.

Why here: the cloud keeps what a device signed (``journal_heads``) and the certificate it signed
with (``journal_certificates``, the DER exactly as the device sent it), so an auditor re-verifies
the cloud's copy of a store's history with the fleet CA's root alone (``journal_audit``), without
trusting the registry, the control plane, or whoever runs its database.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, PrimaryKeyConstraint, String, Table, Text

from control_plane.db.tables import metadata

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
