"""API shapes of the registry."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from protocols.topics import DEVICE_ID_PATTERN

Identifier = Annotated[str, Field(pattern=DEVICE_ID_PATTERN.pattern)]


class TenantIn(BaseModel):
    """A retailer."""

    id: Identifier
    name: str
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "EUR"


class StoreIn(BaseModel):
    """A store of a tenant."""

    id: Identifier
    tenant_id: Identifier
    name: str
    timezone: str = "UTC"


class DeviceIn(BaseModel):
    """An appliance at a register of a store."""

    id: Identifier
    store_id: Identifier
    register_name: str = ""


class DeviceOut(BaseModel):
    """A device as the console and API show it."""

    id: str
    tenant_id: str
    store_id: str
    register_name: str
    online: bool
    last_seen_at: int | None
    backlog: int
    reported_seq: int
    lag_ms: int | None
    hwm: int
    last_ingest_at: int | None
    ingest_lag_ms: int | None
    chain_ok: bool
    chain_alerts: int
    chain_detail: str | None
    decommissioned_at: int | None


class StoreOut(BaseModel):
    """A store as the API shows it."""

    id: str
    tenant_id: str
    name: str
    timezone: str
