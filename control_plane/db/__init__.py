"""The control plane's SQL store: SQLAlchemy Core tables, engine, Alembic migrations."""
