"""Tables of provisioning: enrolments, the certificates the CA issued, the CA's counters.

Times are integer milliseconds since the epoch (UTC), like the rest of the store. Secrets are
never stored in the clear: an enrolment keeps the hashes of its token and fallback code, and the
QR payload only sealed with a key derived from the CA passphrase, and only while it is pending
(so the console can print the sheet again), cleared the moment it is used or revoked.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, String, Table, Text

from control_plane.db.metadata import metadata

enrolments = Table(
    "enrolments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("fallback_code_hash", String(64), nullable=False, unique=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("store_id", String(64), ForeignKey("stores.id"), nullable=False, index=True),
    Column("register_name", String(100), nullable=False, server_default=""),
    # set by `replace`: the device whose register (and place in the store) the new one takes
    Column("replaces_device_id", String(64)),
    Column("created_by", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("used_at", BigInteger),
    Column("used_by_key", String(64)),
    Column("device_id", String(64)),
    Column("sealed_payload", Text),
)

issued_certificates = Table(
    "issued_certificates",
    metadata,
    # serials are up to 159 random bits: hex text, unique by primary key across instances
    Column("serial", String(40), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("common_name", String(64), nullable=False),
    Column("device_id", String(64), index=True),
    Column("not_before", BigInteger, nullable=False),
    Column("not_after", BigInteger, nullable=False),
    Column("public_key_sha256", String(64), nullable=False, index=True),
    Column("revoked_at", BigInteger),
    Column("reason", String(32)),
)

certificate_authority_counters = Table(
    "certificate_authority_counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
