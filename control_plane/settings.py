"""The control plane's one settings object, from ``STOREFLEET_CP_*`` environment variables.

Operator accounts arrive in a later release; until then the control plane refuses to listen on
anything but loopback unless ``STOREFLEET_CP_ALLOW_REMOTE=1`` says the operator means it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocols.broker_url import BrokerAddress, parse_broker_url


class ControlPlaneSettings(BaseSettings):
    """Validated at start; an error names the variable to set."""

    model_config = SettingsConfigDict(env_prefix="STOREFLEET_CP_", env_file=None, extra="ignore")

    database_url: str = "sqlite+aiosqlite:///.storefleet/control-plane.db"
    broker_url: str | None = Field(
        default=None, description="mqtt://host:port; unset starts an embedded broker in-process"
    )
    embedded_broker_port: int = 18830
    host: str = "127.0.0.1"
    port: int = 8080
    allow_remote: bool = False
    ingest_partitions: int = 4
    shared_subscription: bool | None = None
    identity_dir: Path = Field(
        default=Path(".storefleet/control-plane-identity"),
        description="the control plane's own MQTT key and certificate (mqtts:// brokers)",
    )

    @model_validator(mode="after")
    def _loopback_unless_told(self) -> ControlPlaneSettings:
        if self.allow_remote or self.host == "localhost":
            return self
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"STOREFLEET_CP_HOST={self.host} is not loopback and there are no operator "
                "accounts yet; set STOREFLEET_CP_ALLOW_REMOTE=1 if you really mean it"
            )
        return self

    @property
    def embedded_broker(self) -> bool:
        """Whether to start the in-process broker."""
        return self.broker_url is None

    @property
    def broker(self) -> BrokerAddress:
        """The broker to connect to (the embedded one on loopback if none is configured)."""
        if self.broker_url is None:
            return BrokerAddress("127.0.0.1", self.embedded_broker_port, tls=False)
        return parse_broker_url(self.broker_url)

    @property
    def use_shared_subscription(self) -> bool:
        """Shared subscriptions on real brokers; the embedded one does not support them."""
        if self.shared_subscription is not None:
            return self.shared_subscription
        return not self.embedded_broker
