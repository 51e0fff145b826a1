"""The control plane's one settings object, from ``STOREFLEET_CP_*`` environment variables.

Everything is validated before anything starts, and a refusal reads like the one of
``storefleet register`` without an identity: one message that names the variable and says what
to set (:func:`load_settings`, :func:`describe`). A value that parses but cannot work — a
database that does not answer, a CA passphrase an mTLS broker needs — is checked at start too
(``control_plane.cli.serve``), never left for the first request to find.

Every request is authenticated (operators, issue 9), so the control plane may listen on any
interface: it answers only ``Host`` names it knows (``STOREFLEET_CP_ALLOWED_HOSTS``: no DNS
rebinding), serves HTTPS itself (``STOREFLEET_CP_TLS_CERT``/``_KEY``) or sits behind a reverse
proxy whose ``X-Forwarded-*`` it trusts from ``STOREFLEET_CP_TRUSTED_PROXIES`` only
(docs/deploying-the-control-plane.md). ``STOREFLEET_CP_ALLOW_REMOTE`` is gone and ignored.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from protocols.broker_url import BrokerAddress, parse_broker_url
from protocols.release_bundle import TrustedKeys

ENV_PREFIX = "STOREFLEET_CP_"

#: The drivers the control plane runs on, and the URL an operator should write for each.
DATABASE_DRIVERS = {
    "sqlite+aiosqlite": "sqlite+aiosqlite:///path/to/control-plane.db",
    "postgresql+asyncpg": "postgresql+asyncpg://user@host:5432/database",
}

Port = Annotated[int, Field(ge=1, le=65535)]

#: Answered as ``Host`` unless STOREFLEET_CP_ALLOWED_HOSTS says otherwise (with the bound host).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: Bind addresses that name no host a client would type.
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def host_pattern(name: str) -> str:
    """A host name as the ``Host`` header carries it: IPv6 literals in brackets, lower case."""
    name = name.strip().lower()
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return name
    return f"[{address}]" if address.version == 6 else str(address)


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


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
    allowed_hosts: str = Field(
        default="",
        description=(
            "comma-separated host names clients reach the control plane by (the Host header; "
            "'*.example.com' for subdomains); unset: localhost, 127.0.0.1, ::1, the bound host "
            "and the host of STOREFLEET_CA_PUBLIC_URL"
        ),
    )
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate chain: serve HTTPS itself (with TLS_KEY)"
    )
    tls_key: Path | None = Field(default=None, description="PEM private key of TLS_CERT")
    trusted_proxies: str = Field(
        default="",
        description=(
            "comma-separated addresses or networks of reverse proxies whose X-Forwarded-For and "
            "X-Forwarded-Proto are believed; unset: none (the peer address is the client)"
        ),
    )
    metrics_from: str = Field(
        default="127.0.0.0/8,::1",
        description="comma-separated networks that may read /metrics (Prometheus); others get 403",
    )
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
    release_keys: str = Field(
        default="",
        description=(
            "comma-separated Ed25519 public keys (base64url of the raw 32 bytes, as "
            "`storefleet release keygen` prints them) whose signed bundles are accepted; "
            "several at once while keys rotate"
        ),
    )
    release_dir: Path = Field(
        default=Path(".storefleet/releases"), description="where published bundles are kept"
    )
    release_max_mb: int = Field(
        default=512, ge=1, le=65536, description="the largest bundle accepted, in MiB"
    )
    release_base_url: str | None = Field(
        default=None,
        description="the http(s):// URL devices download bundles from; unset: "
        "STOREFLEET_CA_PUBLIC_URL (the one they enrol with), else this control plane's address",
    )
    rollout_tick_s: float = Field(
        default=1.0, gt=0, le=60, description="seconds between two passes of the rollout driver"
    )
    rollout_lease_s: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="seconds a rollout's driver lease lasts unrenewed (another instance then "
        "takes over)",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        problem = database_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("release_keys")
    @classmethod
    def _release_keys(cls, value: str) -> str:
        TrustedKeys.from_texts(_names(value))  # a ValueError names the key that is not one
        return value

    @field_validator("broker_url", mode="before")
    @classmethod
    def _broker_url(cls, value: object) -> object:
        if value == "":  # `STOREFLEET_CP_BROKER_URL=` in a unit file means "not set"
            return None
        if isinstance(value, str):
            parse_broker_url(value)  # BrokerUrlError is a ValueError: it says what is wrong
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _allowed_hosts(cls, value: str) -> str:
        for name in _names(value):
            if "*" in name[1:] or (name.startswith("*") and not name.startswith("*.")):
                raise ValueError(f"{name!r}: a wildcard is written '*.example.com' (or '*' alone)")
        return value

    @field_validator("trusted_proxies", "metrics_from")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in _names(value):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError as err:
                raise ValueError(f"{part!r} is not an IP address or network ({err})") from err
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> ControlPlaneSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(
                "set both STOREFLEET_CP_TLS_CERT and STOREFLEET_CP_TLS_KEY to serve HTTPS, "
                "or neither (plain HTTP, e.g. behind a reverse proxy)"
            )
        for variable, path in (("TLS_CERT", self.tls_cert), ("TLS_KEY", self.tls_key)):
            if path is not None and not path.is_file():
                raise ValueError(f"STOREFLEET_CP_{variable}={path} is not a readable file")
        return self

    def trusted_hosts(self, *, public_url: str | None = None) -> list[str]:
        """The ``Host`` names answered; anything else is refused with 400 (DNS rebinding).

        ``public_url`` is the URL appliances enrol with (the CA's): its host is always allowed.
        """
        names = _names(self.allowed_hosts)
        if not names:
            names = [*LOOPBACK_NAMES]
            if self.host not in _WILDCARDS:
                names.append(self.host)
        if public_url and (public_host := urlsplit(public_url).hostname):
            names.append(public_host)
        return sorted({host_pattern(name) for name in names})

    @property
    def metrics_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Who may read /metrics."""
        return [ipaddress.ip_network(part, strict=False) for part in _names(self.metrics_from)]

    @property
    def plain_http_exposed(self) -> bool:
        """Listening beyond loopback without TLS and without a proxy: secrets cross in clear."""
        if self.tls_cert is not None or self.trusted_proxies:
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host != "localhost"

    def uvicorn_options(self) -> dict[str, Any]:
        """How uvicorn serves: address, HTTPS when configured, whose forwarded headers count."""
        proxies = [str(ipaddress.ip_network(p, strict=False)) for p in _names(self.trusted_proxies)]
        return {
            "host": self.host,
            "port": self.port,
            "ssl_certfile": str(self.tls_cert) if self.tls_cert else None,
            "ssl_keyfile": str(self.tls_key) if self.tls_key else None,
            "proxy_headers": bool(proxies),
            "forwarded_allow_ips": proxies or None,
        }

    @property
    def trusted_release_keys(self) -> TrustedKeys:
        """The keys a published bundle's signature must verify with (rotation: several)."""
        return TrustedKeys.from_texts(_names(self.release_keys))

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
