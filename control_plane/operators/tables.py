"""Tables of operators: accounts, sessions, API tokens, login lockouts and the audit log.

Times are integer milliseconds since the epoch (UTC), like the rest of the store. No secret is
stored in a form that can be replayed: passwords are argon2id hashes; session ids and API tokens
are 256-bit random values stored as their sha256 (a fast hash suffices for that much entropy).
The TOTP seed must be readable to check a code, so it is kept as is: read access to this table
is as sensitive as the CA directory. The audit log is append-only: no code path updates or
deletes it, and on PostgreSQL (and SQLite) a trigger refuses UPDATE and DELETE.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from control_plane.db.metadata import metadata

#: BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements)
AuditId = BigInteger().with_variant(Integer(), "sqlite")

operators = Table(
    "operators",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False, server_default=""),
    Column("role", String(32), nullable=False),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), index=True),
    Column("password_hash", Text, nullable=False),
    Column("totp_secret", String(64)),
    Column("totp_confirmed_at", BigInteger),
    Column("totp_last_step", BigInteger),
    Column("created_by", String(254), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("password_changed_at", BigInteger, nullable=False),
    Column("disabled_at", BigInteger),
    CheckConstraint(
        "(role = 'platform_admin' AND tenant_id IS NULL)"
        " OR (role <> 'platform_admin' AND tenant_id IS NOT NULL)",
        name="ck_operators_tenant_for_role",
    ),
)

operator_sessions = Table(
    "operator_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("operator_id", String(32), ForeignKey("operators.id"), nullable=False, index=True),
    # "totp": the password was right, the admin's code is still due; "active": logged in
    Column("stage", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("client", String(64), nullable=False, server_default=""),
    Column("user_agent", String(200), nullable=False, server_default=""),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("operator_id", String(32), ForeignKey("operators.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("scopes", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("last_used_at", BigInteger),
    Column("last_used_from", String(64)),
)

# failed logins per (lower-cased) email, known or not, so a lockout tells nobody which exist
login_lockouts = Table(
    "login_lockouts",
    metadata,
    Column("email", String(254), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", BigInteger, nullable=False),
    Column("locked_until", BigInteger),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", AuditId, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("actor_id", String(32)),
    Column("actor", String(254), nullable=False),
    Column("via", String(16), nullable=False),
    Column("token_id", String(16)),
    Column("tenant_id", String(64)),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False, server_default=""),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(64), nullable=False, server_default=""),
    Column("client", String(64), nullable=False, server_default=""),
    Column("before", Text),
    Column("after", Text),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_actor_at", "actor", "at"),
    Index("ix_audit_log_action_at", "action", "at"),
    Index("ix_audit_log_tenant_at", "tenant_id", "at"),
)
