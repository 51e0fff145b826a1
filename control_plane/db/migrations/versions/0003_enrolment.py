"""enrolments, issued certificates, CA counters

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrolments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("fallback_code_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("register_name", sa.String(length=100), server_default="", nullable=False),
        sa.Column("replaces_device_id", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.Column("used_by_key", sa.String(length=64), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("sealed_payload", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_enrolments_store_id_stores")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_enrolments_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolments")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_enrolments_token_hash")),
        sa.UniqueConstraint("fallback_code_hash", name=op.f("uq_enrolments_fallback_code_hash")),
    )
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrolments_store_id"), ["store_id"], unique=False)

    op.create_table(
        "issued_certificates",
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("common_name", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("not_before", sa.BigInteger(), nullable=False),
        sa.Column("not_after", sa.BigInteger(), nullable=False),
        sa.Column("public_key_sha256", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_issued_certificates")),
    )
    with op.batch_alter_table("issued_certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_issued_certificates_device_id"), ["device_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_issued_certificates_public_key_sha256"),
            ["public_key_sha256"],
            unique=False,
        )

    counters = op.create_table(
        "certificate_authority_counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_certificate_authority_counters")),
    )
    op.bulk_insert(counters, [{"name": "crl_number", "value": 0}])


def downgrade() -> None:
    op.drop_table("certificate_authority_counters")
    with op.batch_alter_table("issued_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issued_certificates_public_key_sha256"))
        batch_op.drop_index(batch_op.f("ix_issued_certificates_device_id"))
    op.drop_table("issued_certificates")
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrolments_store_id"))
    op.drop_table("enrolments")
