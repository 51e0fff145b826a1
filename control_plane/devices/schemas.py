"""API shapes of the registry."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from control_plane.inputs import Identifier, Name, RegisterName, TimeZone
from protocols.limits import CurrencyCode


class TenantIn(BaseModel):
    """A retailer."""

    model_config = ConfigDict(extra="forbid")

    id: Identifier
    name: Name
    currency: CurrencyCode = "EUR"


class StoreIn(BaseModel):
    """A store of a tenant."""

    model_config = ConfigDict(extra="forbid")

    id: Identifier
    tenant_id: Identifier
    name: Name
    timezone: TimeZone = "UTC"


class DeviceIn(BaseModel):
    """An appliance at a register of a store."""

    model_config = ConfigDict(extra="forbid")

    id: Identifier
    store_id: Identifier
    register_name: RegisterName = ""


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


class PeripheralHealthOut(BaseModel):
    """One peripheral as the appliance reports it (``edge/peripherals/health.py``)."""

    model_config = ConfigDict(extra="allow")

    device: str = ""
    kind: str = ""
    connected: bool | None = None
    error: str | None = None
    last_seen: float | None = None  # wall clock seconds on the appliance
    detail: dict[str, Any] = Field(default_factory=dict)
    counters: dict[str, int] = Field(default_factory=dict)


class DeviceStateOut(BaseModel):
    """The latest state the device reported, and what in it needs an operator."""

    device_id: str
    config_version: int
    app_release: str
    slot: str
    peripherals: dict[str, PeripheralHealthOut]
    problems: list[str]
    received_at: int


class VarianceLineOut(BaseModel):
    """One GTIN of a count: counted minus expected."""

    gtin: str
    expected: int
    counted: int
    variance: int


class VarianceReportOut(BaseModel):
    """A committed count's report as the store wrote it into its journal."""

    model_config = ConfigDict(extra="allow")

    session_id: str
    location: str = ""
    started_at_ms: int | None = None
    stopped_at_ms: int | None = None
    reads: int = 0
    lines: list[VarianceLineOut] = Field(default_factory=list)
    other_tags: dict[str, int] = Field(default_factory=dict)
    expected_total: int = 0
    counted_total: int = 0

    @model_validator(mode="before")
    @classmethod
    def _totals_from_lines(cls, raw: Any) -> Any:
        """A report committed without totals (an older appliance, an imported count) sums them."""
        if not isinstance(raw, dict) or not isinstance(raw.get("lines"), list):
            return raw
        lines = [line for line in raw["lines"] if isinstance(line, dict)]
        totals = {
            "expected_total": sum(int(line.get("expected", 0)) for line in lines),
            "counted_total": sum(int(line.get("counted", 0)) for line in lines),
        }
        return totals | raw


class StockCountOut(BaseModel):
    """A committed stock count: where, which journal record, the variance report."""

    device_id: str
    store_id: str
    seq: int
    ts: int
    report: VarianceReportOut


class OsUpdateOut(BaseModel):
    """One step of an OS update as the appliance's agent said it (``os.update``); a revert is a
    failure, never a success."""

    ts: int = Field(description="when the appliance said it (ms since the epoch)")
    received_at: int = Field(description="when the cloud stored it (ms since the epoch)")
    version: str = Field(description="the OS version (or the image's name before it is read)")
    state: str = Field(description="installing, failed, confirming, succeeded or reverted")
    detail: str
