"""Every table of the control plane, gathered on the one MetaData: what Alembic compares.

Each domain defines its own tables in its ``tables.py`` (``control_plane.devices.tables`` holds
the registry: tenants, stores, store tags, devices, device state; ``ingest.tables`` the journal;
``sales.tables``, ``commands.tables`` …) on :data:`control_plane.db.metadata.metadata`. Code
imports a table from its domain; this module only imports every domain's so that the migration
environment (``migrations/env.py``) and the schema test see the whole schema at once. Nothing
else imports it, and no domain may (that would be an import circle).
"""

from __future__ import annotations

from control_plane.alerts import tables as alerts
from control_plane.catalog import tables as catalog
from control_plane.commands import tables as commands
from control_plane.configuration import tables as configuration
from control_plane.customers import tables as customers
from control_plane.db.metadata import metadata
from control_plane.devices import logs as device_logs
from control_plane.devices import tables as devices
from control_plane.ingest import tables as ingest
from control_plane.loyalty import tables as loyalty
from control_plane.notifications import tables as notifications
from control_plane.operators import tables as operators
from control_plane.provisioning import tables as provisioning
from control_plane.releases import tables as releases
from control_plane.reports import rollup_tables
from control_plane.reports import tables as reports
from control_plane.rollouts import tables as rollouts
from control_plane.sales import tables as sales
from control_plane.stock import tables as stock

#: The modules that define tables, one per domain (``device_logs`` keeps its table beside its
#: files); importing them registers every table on ``metadata``.
DOMAINS = (
    alerts,
    catalog,
    commands,
    configuration,
    customers,
    device_logs,
    devices,
    ingest,
    loyalty,
    notifications,
    operators,
    provisioning,
    releases,
    reports,
    rollup_tables,
    rollouts,
    sales,
    stock,
)

__all__ = ["DOMAINS", "metadata"]
