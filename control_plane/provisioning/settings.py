"""Settings of the control plane's CA and enrolment, from ``STOREFLEET_CA_*`` variables.

Their own object (next to `ControlPlaneSettings`) because a control plane that never enrols
anything needs no CA directory. ``storefleet serve`` validates them at start all the same
(``control_plane.startup``): refused there, with one message naming the variable, when an mTLS
broker needs the CA or any ``STOREFLEET_CA_*`` variable says provisioning is meant; otherwise
enrolment is off and the start says so in one line. The passphrase decrypts the CA's issuing key,
so a default one is refused unless the demo says it is a demo.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocols.broker_url import parse_broker_url
from provisioning.ca import MIN_PASSPHRASE_BYTES

DEMO_PASSPHRASE = "storefleet demo passphrase, not a secret"  # noqa: S105 - refused outside demo


class ProvisioningSettings(BaseSettings):
    """Validated when provisioning is first used; an error names the variable to set."""

    model_config = SettingsConfigDict(env_prefix="STOREFLEET_CA_", env_file=None, extra="ignore")

    directory: Path = Field(
        default=Path(".storefleet/ca"), description="where the CA's keys and certificates live"
    )
    passphrase: SecretStr = Field(
        default=SecretStr(DEMO_PASSPHRASE),
        description=f"a long random secret (at least {MIN_PASSPHRASE_BYTES} bytes)",
    )
    demo: bool = Field(
        default=False, description="allow the default passphrase and create the CA if missing"
    )
    public_url: str = Field(
        default="http://127.0.0.1:8080",
        description="the control-plane URL appliances enrol with (written into the QR code)",
    )
    device_broker_url: str = Field(
        default="mqtts://127.0.0.1:8883", description="the broker URL handed to enrolled devices"
    )
    service_broker_url: str | None = Field(
        default=None,
        description="where the control plane administers the broker's access list: the "
        "broker's service listener (client ids not bound, unreachable by appliances) when the "
        "device listener binds client ids to certificates; unset: device_broker_url",
    )
    crl_file: Path | None = Field(
        default=None, description="where the broker reads its CRL; rewritten on each revocation"
    )
    enrolment_ttl_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    code_attempts: int = Field(
        default=10, ge=1, description="unknown typed codes per client address per 10 minutes"
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            msg = f"{value!r} is not an http:// or https:// URL with a host"
            raise ValueError(msg)
        return value

    @field_validator("device_broker_url", "service_broker_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_broker_url(value)  # BrokerUrlError is a ValueError that says what is wrong
        return value

    @property
    def admin_broker_url(self) -> str:
        """The broker URL the control plane's access-list sessions use."""
        return self.service_broker_url or self.device_broker_url

    @model_validator(mode="after")
    def _no_default_secret(self) -> ProvisioningSettings:
        secret = self.passphrase.get_secret_value()
        if not self.demo and secret == DEMO_PASSPHRASE:
            msg = (
                "STOREFLEET_CA_PASSPHRASE is not set: the CA's keys would be encrypted with the "
                "public demo passphrase; set a long random STOREFLEET_CA_PASSPHRASE (or "
                "STOREFLEET_CA_DEMO=1 for a throw-away demo)"
            )
            raise ValueError(msg)
        if len(secret.encode()) < MIN_PASSPHRASE_BYTES:
            msg = f"STOREFLEET_CA_PASSPHRASE must be at least {MIN_PASSPHRASE_BYTES} bytes long"
            raise ValueError(msg)
        return self

    @property
    def passphrase_bytes(self) -> bytes:
        """The passphrase as the CA wants it."""
        return self.passphrase.get_secret_value().encode()

    @property
    def enrolment_ttl(self) -> timedelta:
        """How long a new enrolment stays redeemable unless the operator says otherwise."""
        return timedelta(hours=self.enrolment_ttl_hours)
