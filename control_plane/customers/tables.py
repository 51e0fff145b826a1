"""Customer tables on the shared metadata (migration ``0021_customers``).

What the raw database holds, and why none of it is an e-mail or a phone number in clear:

- ``customer_tenant_keys``: one random 32-byte tenant key per tenant, sealed (AES-256-GCM) under
  the master key from ``STOREFLEET_CP_CUSTOMERS_MASTER_KEY`` (envelope encryption). A copy of
  the database without that variable opens nothing.
- ``customers``: the pseudonymous id (protocols/customer_card.py), consent flags and when/how
  given, and ``sealed_profile`` (name, e-mail, phone as JSON) sealed under the customer's own
  key, which is itself sealed under the tenant key in ``wrapped_key``. Erasure sets both to NULL:
  the profile is crypto-shredded, the row (and every sale attributed to its id) stays.
- ``customer_search_terms``: keyed blind indexes. Each normalised e-mail, phone, name prefix and
  pair of a name word with the beginning of another (``blind_index``) is stored only as the
  first 16 bytes of its HMAC-SHA256 under the tenant's index key, so the table answers "who
  has this e-mail" to whoever holds the key and nothing to whoever reads it.
- ``customer_receipts``: the outbox of digital receipts, one row per sale with a customer,
  written by the ingest in the sale's own transaction; it holds ids only, the address is opened
  when the e-mail is sent.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from control_plane.db.metadata import metadata

#: A customer id: "C" + 12 symbols + 1 check symbol.
CUSTOMER_ID_LENGTH = 14
#: Bytes of a blind index term kept: 128 bits, no collisions among a tenant's terms.
TERM_BYTES = 16

customer_tenant_keys = Table(
    "customer_tenant_keys",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("master_key_id", String(16), nullable=False),  # which master key sealed it
    Column("wrapped_key", LargeBinary, nullable=False),  # nonce ‖ sealed tenant key ‖ tag
    Column("created_at", BigInteger, nullable=False),
)

customers = Table(
    "customers",
    metadata,
    Column("id", String(CUSTOMER_ID_LENGTH), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=True),  # the customer's key; NULL once erased
    Column("sealed_profile", LargeBinary, nullable=True),  # name, e-mail, phone; NULL once erased
    Column("marketing_consent", Boolean, nullable=False, server_default=false()),
    Column("receipt_consent", Boolean, nullable=False, server_default=false()),
    Column("consent_at", BigInteger, nullable=True),
    Column("consent_via", String(32), nullable=True),  # in_store | console | web | phone
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("erased_at", BigInteger, nullable=True),
    # which blind_index.TERMS_VERSION its search terms were written by (migration 0025: the
    # customers before it are 1); older ones are re-indexed by service.reindex_customers
    Column("terms_version", SmallInteger, nullable=False, server_default="1"),
    Index("ix_customers_tenant_created", "tenant_id", "created_at"),
    Index("ix_customers_tenant_terms_version", "tenant_id", "terms_version"),
)

customer_search_terms = Table(
    "customer_search_terms",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("term", LargeBinary(TERM_BYTES), nullable=False),
    Column("customer_id", String(CUSTOMER_ID_LENGTH), nullable=False),
    PrimaryKeyConstraint("tenant_id", "term", "customer_id"),
    Index("ix_customer_search_terms_customer", "customer_id"),
)

customer_receipts = Table(
    "customer_receipts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("customer_id", String(CUSTOMER_ID_LENGTH), nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("sale_id", String(64), nullable=False),
    Column(
        "status", String(16), nullable=False, server_default="pending"
    ),  # pending|sent|failed|skipped
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("done_at", BigInteger, nullable=True),
    UniqueConstraint("device_id", "seq", name="uq_customer_receipts_record"),
    Index("ix_customer_receipts_due", "status", "next_at"),
    Index("ix_customer_receipts_customer", "customer_id"),
)
