"""How notifications are delivered, from ``STOREFLEET_CP_NOTIFY_*`` environment variables.

The SMTP password is read from the environment only (``STOREFLEET_CP_NOTIFY_SMTP_PASSWORD``) and
never echoed by a refusal (``control_plane.settings.describe`` masks it). Webhook signing secrets
are stored sealed under ``STOREFLEET_CP_NOTIFY_SECRETS_KEY`` (``secret_box``); without that key
no webhook channel can be added.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from control_plane.settings import SettingsRefused, describe

ENV_PREFIX = "STOREFLEET_CP_NOTIFY_"
#: The shortest sealing key accepted: 32 characters (256 bits of base64 text carry 192).
MIN_KEY_CHARS = 32


class NotificationSettings(BaseSettings):
    """Validated at start; an error names the variable to set."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=None, extra="ignore")

    poll_s: float = Field(default=2.0, gt=0, le=60, description="seconds between outbox passes")
    lease_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="seconds a claimed delivery stays another instance's (longer than a send)",
    )
    batch: int = Field(default=20, ge=1, le=500, description="deliveries claimed per pass")
    max_attempts: int = Field(
        default=8, ge=1, le=50, description="attempts before a delivery is marked failed"
    )
    backoff_initial: float = Field(
        default=5.0, gt=0, le=3600, description="the first retry's ceiling (seconds)"
    )
    backoff_max: float = Field(
        default=900.0, gt=0, le=86400, description="the cap of every retry's wait (seconds)"
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="seconds a webhook receiver has to answer"
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="1: webhooks may point at loopback, private and link-local addresses",
    )
    keep_days: int = Field(
        default=30, ge=1, le=3650, description="days sent and failed deliveries are kept"
    )
    smtp_host: str | None = Field(
        default=None, description="the SMTP relay's host; unset: e-mail channels are refused"
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="the SMTP relay's port")
    smtp_starttls: bool = Field(default=True, description="1: STARTTLS before anything is sent")
    smtp_user: str | None = Field(default=None, description="SMTP login (with SMTP_PASSWORD)")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password")
    smtp_from: str = Field(
        default="storefleet@localhost", description="the From address of alert e-mails"
    )
    smtp_timeout_s: float = Field(default=30.0, gt=0, le=300, description="SMTP socket timeout")

    secrets_key: SecretStr | None = Field(
        default=None,
        description=(
            "the key webhook signing secrets are sealed with in the database (at least"
            f" {MIN_KEY_CHARS} random characters, e.g. openssl rand -base64 48); unset: webhook"
            " channels are refused"
        ),
    )

    @field_validator("secrets_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_KEY_CHARS:
            msg = f"must be at least {MIN_KEY_CHARS} characters (e.g. openssl rand -base64 48)"
            raise ValueError(msg)
        return value

    @property
    def secrets_key_text(self) -> str | None:
        """The sealing key, or None when none is configured."""
        return self.secrets_key.get_secret_value() if self.secrets_key else None

    @property
    def email_ready(self) -> bool:
        """Whether e-mail can be sent at all."""
        return bool(self.smtp_host)


def load_notification_settings() -> NotificationSettings:
    """The settings from the environment, or :class:`SettingsRefused` saying what to set."""
    try:
        return NotificationSettings()
    except ValidationError as err:
        raise SettingsRefused(describe(err, NotificationSettings)) from err
