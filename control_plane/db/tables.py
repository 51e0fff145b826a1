"""The core tables by their old address: each is defined in its domain's ``tables.py``.

Where each table lives (all on the one :data:`~control_plane.db.metadata.metadata`):

* ``tenants``, ``stores``, ``store_tags``, ``devices``, ``device_state`` —
  :mod:`control_plane.devices.tables` (the registry)
* ``journal`` — :mod:`control_plane.ingest.tables`
* ``sales`` — :mod:`control_plane.sales.tables`
* ``commands`` — :mod:`control_plane.commands.tables`

New code imports a table from its domain; this module only keeps the modules that still import
``control_plane.db.tables`` working, and must never import a module that imports it.
"""

from __future__ import annotations

from control_plane.commands.tables import commands
from control_plane.db.metadata import metadata
from control_plane.devices.tables import device_state, devices, store_tags, stores, tenants
from control_plane.ingest.tables import journal
from control_plane.sales.tables import sales

__all__ = [
    "commands",
    "device_state",
    "devices",
    "journal",
    "metadata",
    "sales",
    "store_tags",
    "stores",
    "tenants",
]
