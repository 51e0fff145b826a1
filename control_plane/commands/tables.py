"""Tables of remote commands: each command sent to a device and, once answered, its result."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, String, Table, Text

from control_plane.db.metadata import metadata

# remote commands sent to devices and, once the device answered, their results
commands = Table(
    "commands",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("args", Text, nullable=False, server_default="{}"),
    Column("created_at", BigInteger, nullable=False),
    Column("deadline_at", BigInteger, nullable=False),
    Column("completed_at", BigInteger),
    Column("ok", Boolean),
    Column("result", Text),
    Column("error", Text),
    Index("ix_commands_device_created", "device_id", "created_at"),
)
