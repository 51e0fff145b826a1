"""Customer data settings, from ``STOREFLEET_CP_CUSTOMERS_*`` environment variables.

The master key (``STOREFLEET_CP_CUSTOMERS_MASTER_KEY``) seals every tenant's key, which seals
every customer's profile (:mod:`control_plane.customers.keyring`). It is read from the
environment only and never echoed by a refusal. Unset, the control plane still runs, but every
customer route answers 503 naming the variable (a fleet without customers needs no key); set but
too short, ``storefleet-cloud serve`` refuses to start. The demo embeds a development key.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from control_plane.notifications.settings import MIN_KEY_CHARS
from control_plane.settings import SettingsRefused, describe

ENV_PREFIX = "STOREFLEET_CP_CUSTOMERS_"
MASTER_KEY_VARIABLE = f"{ENV_PREFIX}MASTER_KEY"


class CustomerSettings(BaseSettings):
    """Validated at start; an error names the variable to set."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=None, extra="ignore")

    master_key: SecretStr | None = Field(
        default=None,
        description=(
            f"the key every tenant's customer key is sealed with (at least {MIN_KEY_CHARS} random"
            " characters, e.g. openssl rand -base64 48); keep it outside the database and its"
            " backups; unset: customer routes answer 503"
        ),
    )
    receipts_poll_s: float = Field(
        default=2.0, gt=0, le=60, description="seconds between passes of the receipt mailer"
    )
    receipts_from: str = Field(
        default="receipts@localhost", description="the From address of digital receipts"
    )

    @field_validator("master_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_KEY_CHARS:
            msg = f"must be at least {MIN_KEY_CHARS} characters (e.g. openssl rand -base64 48)"
            raise ValueError(msg)
        return value

    @property
    def master_key_text(self) -> str | None:
        """The master key, or None when none is configured."""
        return self.master_key.get_secret_value() if self.master_key else None


def load_customer_settings() -> CustomerSettings:
    """The settings from the environment, or :class:`SettingsRefused` saying what to set."""
    try:
        return CustomerSettings()
    except ValidationError as err:
        raise SettingsRefused(describe(err, CustomerSettings)) from err
