"""Configuration tables on the shared metadata (migration ``0012_configuration``).

- ``config_settings``: one key's value at one layer (tenant, group, store, register), who set it,
  when, and the audit entry; the platform layer is the schema's defaults and has no rows.
- ``config_groups`` and ``store_tags``: a store group is every store of its tenant carrying the
  group's tag; two groups of one store are ordered by ``priority`` (higher wins), then id.
- ``config_effective``: the resolved document of each device with its version (monotonic, bumped
  only when the document changes), provenance per key, and the version last published.
- ``config_reports`` and ``config_drift``: what the device reported (version, hash per key) and,
  per key that differs from desired, since when.
- ``store_staff``: cashiers and managers; the PIN only as its argon2id hash.
- ``config_layer_versions``: every change to a layer as a version of that layer (who, when, the
  audit entry, the keys before and the whole layer after), so a layer can be restored; staff
  values are kept redacted (no PIN hash twice).
- ``config_device_versions``: each version of a device's effective document: its digest, the
  keys that changed and the change that made it.
- ``config_changes``, ``config_change_devices``, ``config_change_leases`` (migration
  ``0019_config_staged_changes``): a change published through waves (``staged.py``): the key,
  value and layer it is meant for, its waves and gates, where it stands and why; each register
  it reaches with its wave, state, reason and the versions that brought and took the change;
  the instance driving it and until when (the rollouts' lease rules, ``rollouts/lease.py``).
Values are canonical JSON text (what the per-key hash covers). Times are ms since the epoch.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from control_plane.db.metadata import metadata

config_settings = Table(
    "config_settings",
    metadata,
    Column("layer", String(16), nullable=False),
    Column("target", String(64), nullable=False),
    Column("key", String(64), nullable=False),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("value", Text, nullable=False),
    Column("set_by", String(254), nullable=False),
    Column("set_at", BigInteger, nullable=False),
    Column("audit_id", BigInteger),
    PrimaryKeyConstraint("layer", "target", "key"),
)

config_groups = Table(
    "config_groups",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("tag", String(64), nullable=False),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
)


config_effective = Table(
    "config_effective",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("version", BigInteger, nullable=False),
    Column("document", Text, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("computed_at", BigInteger, nullable=False),
    Column("published_version", BigInteger, nullable=False, server_default="0"),
    Column("published_at", BigInteger),
)

config_reports = Table(
    "config_reports",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("hashes", Text),  # None: the device reports no per-key hashes (an older agent)
    Column("received_at", BigInteger, nullable=False),
)

config_drift = Table(
    "config_drift",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("since", BigInteger, nullable=False),
    PrimaryKeyConstraint("device_id", "key"),
)

store_staff = Table(
    "store_staff",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("store_id", String(64), ForeignKey("stores.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("pin_hash", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(254), nullable=False),
)

# -- history (migration ``0015_config_history``) ------------------------------------------------

config_layer_versions = Table(
    "config_layer_versions",
    metadata,
    Column("layer", String(16), nullable=False),
    Column("target", String(64), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # set | delete | rollback
    Column("keys", Text, nullable=False),  # JSON list of the keys the change touched
    Column("before", Text, nullable=False),  # JSON {key: value} of those keys before (unset: none)
    Column("settings", Text, nullable=False),  # JSON {key: value}: the whole layer after
    Column("restored", BigInteger),  # rollback: the version restored
    Column("actor", String(254), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("audit_id", BigInteger),
    PrimaryKeyConstraint("layer", "target", "version"),
)

config_device_versions = Table(
    "config_device_versions",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("digest", String(64), nullable=False),
    Column("keys", Text),  # JSON list of the keys that differ from the version before; None: first
    Column("layer", String(16)),  # the change that made it (None: a sweep, e.g. a new device)
    Column("target", String(64)),
    Column("layer_version", BigInteger),
    Column("actor", String(254)),
    Column("audit_id", BigInteger),
    Column("at", BigInteger, nullable=False),
    PrimaryKeyConstraint("device_id", "version"),
)

# -- changes through waves (migration ``0019_config_staged_changes``) --------------------------

config_changes = Table(
    "config_changes",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("layer", String(16), nullable=False),  # where the change lands once every wave passed
    Column("target", String(64), nullable=False),
    Column("key", String(64), nullable=False),
    Column("value", Text, nullable=False),  # canonical JSON
    Column("waves", Text, nullable=False),  # JSON list of the rollouts' WaveIn
    Column("health_s", Integer, nullable=False),
    Column("deadline_s", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # running paused halted aborted completed
    Column("current_wave", Integer, nullable=False, server_default="0"),
    Column("wave_reached_at", BigInteger),  # when the current wave passed (its soak runs)
    Column("reason", Text, nullable=False, server_default=""),
    Column("created_by", String(254), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

config_change_devices = Table(
    "config_change_devices",
    metadata,
    Column("change_id", String(32), ForeignKey("config_changes.id"), nullable=False),
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("wave", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # pending notified applied succeeded failed …
    Column("detail", Text, nullable=False, server_default=""),
    Column("version", BigInteger),  # the document version that carries the change to it
    Column("state_at", BigInteger, nullable=False),
    Column("notified_at", BigInteger),
    Column("applied_at", BigInteger),  # when it first reported ``version``
    Column("rolled_back_to", BigInteger),  # the version that took the change away again
    Column("rolled_back_at", BigInteger),
    PrimaryKeyConstraint("change_id", "device_id"),
    Index("ix_config_change_devices_device_id", "device_id"),
)

config_change_leases = Table(
    "config_change_leases",
    metadata,
    Column("change_id", String(32), ForeignKey("config_changes.id"), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
