"""The control plane's one SQLAlchemy ``MetaData``: every domain's tables are defined on it.

Why its own module: each domain package defines its tables in its own ``tables.py``
(``control_plane.devices.tables``, ``control_plane.ingest.tables`` …) on this one object, so
Alembic compares one schema and the names follow one convention; importing it from here never
imports a domain (:mod:`control_plane.db.tables` gathers every domain's tables for Alembic).
"""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
