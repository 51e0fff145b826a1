"""The control plane's one settings object, from ``STOREFLEET_CP_*`` environment variables.

Everything is validated before anything starts, and a refusal reads like the one of
``storefleet register`` without an identity: one message that names the variable and says what
to set (:func:`load_settings`, :func:`describe`). A value that parses but cannot work — a
database that does not answer, a CA passphrase an mTLS broker needs — is checked at start too
(``control_plane.cli.serve``), never left for the first request to find.

Operator accounts arrive in a later release; until then the control plane refuses to listen on
anything but loopback unless ``STOREFLEET_CP_ALLOW_REMOTE=1`` says the operator means it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from protocols.broker_url import BrokerAddress, parse_broker_url

ENV_PREFIX = "STOREFLEET_CP_"

#: The drivers the control plane runs on, and the URL an operator should write for each.
DATABASE_DRIVERS = {
    "sqlite+aiosqlite": "sqlite+aiosqlite:///path/to/control-plane.db",
    "postgresql+asyncpg": "postgresql+asyncpg://user@host:5432/database",
}

Port = Annotated[int, Field(ge=1, le=65535)]


class SettingsRefused(Exception):  # noqa: N818 - named in the domain's words
    """A setting cannot be used; the message names the variable and the fix."""


def database_url_problem(url: str) -> str | None:
    """Why ``url`` is not a database URL this control plane can use, with the fix; else None."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"not a database URL; write {' or '.join(DATABASE_DRIVERS.values())}"
    driver = parsed.drivername
    if driver in DATABASE_DRIVERS:
        return None
    safe = parsed.render_as_string(hide_password=True)
    if driver.split("+")[0] in {"postgres", "postgresql"}:
        fixed = parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=True)
        return f"{safe} names no driver this control plane has; use the asyncpg one: {fixed}"
    if driver.split("+")[0] == "sqlite":
        fixed = parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=True)
        return f"{safe} names no driver this control plane has; use aiosqlite: {fixed}"
    both = " or ".join(DATABASE_DRIVERS.values())
    return f"{safe}: the control plane stores in SQLite or PostgreSQL; write {both}"


class ControlPlaneSettings(BaseSettings):
    """Validated at start; an error names the variable to set."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=None, extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///.storefleet/control-plane.db",
        description="sqlite+aiosqlite:///path or postgresql+asyncpg://user@host:5432/database",
    )
    broker_url: str | None = Field(
        default=None,
        description="mqtt://host:1883 or mqtts://host:8883; unset starts an embedded broker",
    )
    embedded_broker_port: Port = Field(
        default=18830, description="the embedded broker's TCP port on loopback, 1-65535"
    )
    host: str = Field(default="127.0.0.1", description="the address the API and console bind")
    port: Port = Field(default=8080, description="the TCP port of the API and console, 1-65535")
    allow_remote: bool = Field(default=False, description="1 to listen beyond loopback")
    ingest_partitions: int = Field(
        default=4, ge=1, le=64, description="journal batches stored in parallel, 1-64"
    )
    shared_subscription: bool | None = Field(
        default=None, description="1 or 0; unset: on for a real broker, off for the embedded one"
    )
    identity_dir: Path = Field(
        default=Path(".storefleet/control-plane-identity"),
        description="the control plane's own MQTT key and certificate (mqtts:// brokers)",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        problem = database_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("broker_url", mode="before")
    @classmethod
    def _broker_url(cls, value: object) -> object:
        if value == "":  # `STOREFLEET_CP_BROKER_URL=` in a unit file means "not set"
            return None
        if isinstance(value, str):
            parse_broker_url(value)  # BrokerUrlError is a ValueError: it says what is wrong
        return value

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


#: Values of these settings may hold a secret: a refusal names the variable, never its value.
_NEVER_ECHOED = ("url", "passphrase", "password", "secret", "token", "key")


def describe(err: ValidationError, settings: type[BaseSettings]) -> str:
    """Each problem of ``err`` as an operator reads it: the variable, what is wrong, what to set.

    A URL or secret is never echoed back (a URL may hold a password); validators mask theirs.
    """
    prefix = str(settings.model_config.get("env_prefix", ""))
    problems: list[str] = []
    for error in err.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:
            problems.append(message)  # a check across settings names its variables itself
            continue
        field = str(error["loc"][0])
        variable = f"{prefix}{field}".upper()
        given = error.get("input")
        secret = any(word in field for word in _NEVER_ECHOED)
        shown = "" if secret or not isinstance(given, str | int) else f"={given!s}"
        info = settings.model_fields.get(field)
        expected = info.description if info is not None else None
        # a validator's own message already says what to set; a type error gets the field's words
        hint = f"; expected {expected}" if expected and error["type"] != "value_error" else ""
        problems.append(f"{variable}{shown}: {message}{hint}")
    return "; ".join(problems)


def load_settings() -> ControlPlaneSettings:
    """The settings from the environment, or :class:`SettingsRefused` saying what to set."""
    try:
        return ControlPlaneSettings()
    except ValidationError as err:
        raise SettingsRefused(describe(err, ControlPlaneSettings)) from err
