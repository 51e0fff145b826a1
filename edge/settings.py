"""The appliance's one settings object, from ``STOREFLEET_EDGE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocols.broker_url import BrokerAddress, parse_broker_url
from protocols.topics import validate_device_id


class EdgeSettings(BaseSettings):
    """Validated at start; an error names the variable to set."""

    model_config = SettingsConfigDict(env_prefix="STOREFLEET_EDGE_", extra="ignore")

    device_id: str
    register_id: str = "1"
    ledger_path: Path = Path("/var/lib/storefleet/ledger.db")
    broker_url: str = "mqtt://127.0.0.1:1883"
    currency: str = "EUR"

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        validate_device_id(value)
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    @property
    def broker(self) -> BrokerAddress:
        """Parsed broker address."""
        return parse_broker_url(self.broker_url)
