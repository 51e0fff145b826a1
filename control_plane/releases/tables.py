"""The release table on the shared metadata: one row per signed bundle the platform published.

Releases are platform-wide: the appliance app is the same for every tenant and only bundles
signed by a key the platform trusts are kept, so a tenant rolls out a release, it never owns one.
The bundle's bytes live on disk, named by their sha256 (:mod:`control_plane.releases.store`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table, Text

from control_plane.db.metadata import metadata

releases = Table(
    "releases",
    metadata,
    Column("version", String(100), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("signature", String(200), nullable=False),
    Column("min_agent_version", String(100), nullable=False),
    Column("manifest", Text, nullable=False),
    Column("published_by", String(254), nullable=False),
    Column("published_at", BigInteger, nullable=False),
)
