"""Alembic environment: runs on the connection the control plane hands it."""

from __future__ import annotations

from alembic import context

from control_plane.db.tables import metadata  # every domain's tables: what autogenerate compares

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
