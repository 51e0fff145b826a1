"""The register's one settings object: a TOML or JSON file, then ``STOREFLEET_EDGE_*`` variables.

How it works: :func:`load_register_settings` reads the file named by ``--settings`` (or
``STOREFLEET_EDGE_SETTINGS_FILE``), lets the environment override it key by key (nested keys with
``__``: ``STOREFLEET_EDGE_KIOSK__PORT=8081``) and validates the result once, at start. Every key
is known: an unknown key in the file *or* an unknown ``STOREFLEET_EDGE_*`` variable is refused
with the key's name and the nearest known one, because a misspelt setting silently left at its
default is how a store ends up printing another store's address. A refusal is one
:class:`SettingsRefused` whose message names every setting at fault and what to set; the CLI
prints it in a frame (exit 2) with no traceback.

Nothing here defaults to the demo: a production register reads its store document and catalog
from the data directory (written from the control plane), and the demo is this same object read
from ``edge/register/demo.toml``. Each field's ``description`` is what ``storefleet register
--help`` and ``docs/register-settings.md`` (:mod:`edge.register.settings_doc`) show.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from edge.peripherals.register_config import RegisterDevices
from protocols.broker_url import BrokerAddress, parse_broker_url
from protocols.errors import UnknownTopic
from protocols.limits import ID_LENGTH, PRINTABLE_PATTERN
from protocols.topics import validate_device_id
from provisioning.enrolment import ControlPlaneUrl, Fingerprint

ENV_PREFIX = "STOREFLEET_EDGE_"
ENV_SETTINGS_FILE = f"{ENV_PREFIX}SETTINGS_FILE"
NESTED = "__"
DEFAULT_DATA_DIR = Path("/var/lib/storefleet")

#: Settings of the bench appliance's ``EdgeSettings`` (edge/settings.py, ``storefleet
#: appliance``) that share this prefix but are not the register's: a register given one is told
#: what replaced it, rather than "unknown setting" or, worse, silently selling without it.
RETIRED = {
    "ledger_path": f"the ledger is <data_dir>/ledger.db: set {ENV_PREFIX}DATA_DIR (data_dir)",
    "currency": "the currency is the store's: it comes from the store document (store_file,"
    f" {ENV_PREFIX}STORE_FILE) or the configuration the fleet agent applies",
}


class SettingsRefused(ValueError):  # noqa: N818 - named for what the operator is told
    """The settings cannot start a register; the message names each setting and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KioskSettings(_Section):
    """Where the touchscreen's page (and /healthz, /metrics) is served."""

    host: str = Field(
        default="127.0.0.1", description="address the kiosk, /healthz and /metrics listen on"
    )
    port: int = Field(default=8080, ge=1, le=65535, description="the kiosk's HTTP port")


class TerminalSettings(_Section):
    """The card terminal on the store's network (the register speaks its TCP protocol)."""

    host: str | None = Field(
        default=None, description="card terminal host; unset: card payments are refused"
    )
    port: int = Field(default=0, ge=0, le=65535, description="card terminal TCP port")


class CatalogSettings(_Section):
    """How the catalog reaches the register: a local snapshot, kept in step with the cloud."""

    file: Path | None = Field(
        default=None,
        description="catalog snapshot (JSON) stored into <data_dir>/catalog.db when that has no"
        " catalog yet; default <data_dir>/catalog.json, else fetched from the control plane",
    )
    sync: bool = Field(
        default=True, description="follow the control plane's catalog changes while selling"
    )
    poll_s: float = Field(default=30.0, gt=0, description="seconds between catalog change polls")


class ReplicationOptions(_Section):
    """Tuning of the journal's way to the cloud."""

    enabled: bool = Field(default=True, description="replicate the journal to the broker")
    ack_timeout_s: float = Field(
        default=5.0, gt=0, description="seconds without an ack before records are sent again"
    )
    backoff_max_s: float = Field(
        default=10.0, gt=0, description="longest pause between broker reconnects"
    )


class LogSettings(_Section):
    """What the register writes to stderr (journald, or the agent's log file)."""

    format: Literal["text", "json"] = Field(
        default="text", description="text for people, json (one object a line) for machines"
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="lowest level written"
    )


class EnrolmentCodes(_Section):
    """What a typed enrolment code needs (a QR carries both itself)."""

    control_plane_url: ControlPlaneUrl = Field(description="the control plane to enrol with")
    ca_fingerprint: Fingerprint = Field(description="sha256 hex of the fleet root CA")


class SimulateSettings(_Section):
    """Stand-ins for a demo, a benchmark or a test; all off in a store."""

    card_terminal: bool = Field(
        default=False, description="run the card terminal simulator on loopback"
    )
    cashier_rate: float = Field(
        default=0.0, ge=0, description="a simulated cashier rings this many sales a second"
    )
    cashier_seed: int | None = Field(
        default=None, description="seed of the simulated cashier's baskets"
    )


class RegisterSettings(BaseSettings):
    """Everything the register is told at start; see docs/register-settings.md."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED, extra="forbid", frozen=True
    )

    device_id: str = Field(
        default="",
        description="a fixed device id on a plain broker (bench, demo); unset: the enrolled"
        " certificate names the device",
    )
    identity_dir: Path | None = Field(
        default=None,
        description="key, certificate and enrolment of an appliance that enrols with a QR code",
    )
    broker_url: str = Field(
        default="mqtt://127.0.0.1:1883",
        description="broker of a fixed device_id (an enrolled appliance uses the enrolment's)",
    )
    control_plane_url: str | None = Field(
        default=None,
        description="control plane for the catalog (an enrolled appliance uses the enrolment's)",
    )
    tenant_id: str | None = Field(
        default=None,
        description="whose catalog to follow (an enrolled appliance uses the enrolment's)",
    )
    register_id: str = Field(default="1", description="this till's number within its store")
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="ledger.db, pos.db, catalog.db, store.json and device state live here",
    )
    store_file: Path | None = Field(
        default=None,
        description="a store document (name, address, tax table, currency, staff) used until"
        " the fleet agent applies the control plane's configuration (<data_dir>/config/"
        "applied.json, which wins); default <data_dir>/store.json",
    )
    agent_socket: Path | None = Field(
        default=None,
        description="the fleet agent's Unix socket (the agent sets it for the register it"
        " starts); unset: no health reports",
    )
    heartbeat_s: float = Field(
        default=1.0, gt=0, le=60, description="seconds between heartbeats to the fleet agent"
    )
    kiosk: KioskSettings = Field(default_factory=KioskSettings, description=KioskSettings.__doc__)
    terminal: TerminalSettings = Field(
        default_factory=TerminalSettings, description=TerminalSettings.__doc__
    )
    catalog: CatalogSettings = Field(
        default_factory=CatalogSettings, description=CatalogSettings.__doc__
    )
    replication: ReplicationOptions = Field(
        default_factory=ReplicationOptions, description=ReplicationOptions.__doc__
    )
    log: LogSettings = Field(default_factory=LogSettings, description=LogSettings.__doc__)
    enrolment: EnrolmentCodes | None = Field(
        default=None, description="typed enrolment codes; unset: the QR scan only"
    )
    peripherals: RegisterDevices = Field(
        default_factory=RegisterDevices,
        description="printer, drawer, scanners and RFID readers (edge/peripherals/"
        "register_config.py); preset = simulated runs the simulators",
    )
    simulate: SimulateSettings = Field(
        default_factory=SimulateSettings, description=SimulateSettings.__doc__
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Given values win, then the environment, then the settings file (see the loader)."""
        return (
            init_settings,
            _Environment(settings_cls),
            InitSettingsSource(settings_cls, init_kwargs=_FILE_VALUES.get() or {}),
        )

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        if value:
            try:
                validate_device_id(value)
            except UnknownTopic as err:  # not a ValueError: pydantic would let it escape raw
                raise ValueError(err.reason) from err
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    @field_validator("register_id")
    @classmethod
    def _register_id(cls, value: str) -> str:
        if not 1 <= len(value) <= ID_LENGTH or not _printable(value):
            msg = f"cannot name a register: 1 to {ID_LENGTH} characters, such as 1 or R2"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _who_am_i(self) -> RegisterSettings:
        if not self.device_id and self.identity_dir is None:
            msg = (
                f"missing identity: set {ENV_PREFIX}IDENTITY_DIR (identity_dir: where an appliance"
                f" that enrols with a QR code keeps its key and certificate) or {ENV_PREFIX}"
                "DEVICE_ID (device_id: a fixed id for a bench appliance on a plain broker)"
            )
            raise ValueError(msg)
        if self.device_id and self.identity_dir is not None:
            msg = (
                f"set only one of {ENV_PREFIX}DEVICE_ID and {ENV_PREFIX}IDENTITY_DIR: an enrolled"
                " appliance's id is the one in its certificate"
            )
            raise ValueError(msg)
        if self.terminal.host is not None and not self.terminal.port:
            raise ValueError(f"terminal.port: set {ENV_PREFIX}TERMINAL__PORT with terminal.host")
        return self

    @property
    def broker(self) -> BrokerAddress:
        """Parsed broker address of a fixed device id."""
        return parse_broker_url(self.broker_url)

    @property
    def ledger_path(self) -> Path:
        """The ledger: always in the data directory."""
        return self.data_dir / "ledger.db"

    @property
    def pos_db(self) -> Path:
        """The register's own index and parked sales, beside the ledger."""
        return self.data_dir / "pos.db"

    @property
    def store_path(self) -> Path:
        """Where the store document is read."""
        return self.store_file or self.data_dir / "store.json"

    @property
    def catalog_db(self) -> Path:
        """The catalog the register sells from, stored once and read by index."""
        return self.data_dir / "catalog.db"

    @property
    def catalog_path(self) -> Path:
        """Where the catalog snapshot is read (and written when fetched)."""
        return self.catalog.file or self.data_dir / "catalog.json"


def _printable(value: str) -> bool:
    return re.fullmatch(PRINTABLE_PATTERN, value) is not None


#: What the loader read from the settings file, and the environment it was given: context
#: variables rather than globals, so two registers composed in one process (the demo) or two
#: tests in one event loop cannot see each other's.
_FILE_VALUES: ContextVar[dict[str, Any] | None] = ContextVar("register_settings_file", default=None)
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("register_settings_env", default=None)


class _Environment(EnvSettingsSource):
    """``STOREFLEET_EDGE_*`` from the environment the loader was given (else ``os.environ``)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _ENVIRON.get()
        if env is None:
            return super()._load_env_vars()
        return parse_env_vars(
            env, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


# -- loading ------------------------------------------------------------------------------------


def read_settings_file(path: Path) -> dict[str, Any]:
    """The file's table (``.toml``) or object (``.json``); relative paths in it are resolved
    against the file's directory, so a settings file can name the files beside it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SettingsRefused(
            f"{ENV_SETTINGS_FILE}={path}: cannot read it ({err.strerror}); set it (or --settings)"
            " to the register's settings file"
        ) from err
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as err:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise SettingsRefused(f"{path}: not valid {kind} ({err}); fix the file") from err
    if not isinstance(raw, dict):
        raise SettingsRefused(f"{path}: the document must be a table/object of settings")
    return _resolve_paths(raw, path.parent)


_PATH_KEYS = {("identity_dir",), ("data_dir",), ("store_file",), ("catalog", "file")}


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    out = dict(raw)
    for key in _PATH_KEYS:
        holder: Any = out
        for part in key[:-1]:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and isinstance(holder.get(key[-1]), str):
            value = Path(holder[key[-1]]).expanduser()
            holder[key[-1]] = os.path.normpath(value if value.is_absolute() else base / value)
    return out


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``STOREFLEET_EDGE_*`` variables that name no setting, each with the nearest known one."""
    known = _known_keys(RegisterSettings)
    problems = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == ENV_SETTINGS_FILE:
            continue
        key = name.removeprefix(ENV_PREFIX).lower()
        if key in known or any(key.startswith(k + NESTED) for k in _open_keys(RegisterSettings)):
            continue
        if key in RETIRED:
            problems.append(f"{name}: not a register setting; {RETIRED[key]}")
            continue
        near = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f" (did you mean {ENV_PREFIX}{near[0].upper()}?)" if near else ""
        problems.append(f"{name}: unknown setting{hint}; remove it or correct its name")
    return problems


def _known_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        keys.add(prefix + name)
        nested = _model_of(info.annotation)
        if nested is not None and nested is not RegisterDevices:
            keys |= _known_keys(nested, prefix + name + NESTED)
    return keys


def _open_keys(model: type[BaseModel]) -> set[str]:
    """Sections whose inner keys the section's own model checks (the peripherals document)."""
    return {"peripherals"}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def describe(err: ValidationError) -> str:
    """Each problem as the operator reads it: the setting (file key and variable), what to set."""
    problems = []
    for error in err.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = [str(part) for part in error["loc"]]
        if not loc:
            problems.append(message)  # a check across settings names its settings itself
            continue
        key = ".".join(loc)
        variable = ENV_PREFIX + NESTED.join(loc).upper()
        given = error.get("input")
        shown = f" (given {given!r})" if isinstance(given, str | int | float) else ""
        if error["type"] == "extra_forbidden" and key in RETIRED:
            problems.append(f"{key}: not a register setting; {RETIRED[key]}")
            continue
        if error["type"] == "extra_forbidden":
            known = _known_keys(RegisterSettings)
            near = difflib.get_close_matches(NESTED.join(loc), sorted(known), n=1)
            hint = f"; did you mean {near[0].replace(NESTED, '.')}?" if near else ""
            problems.append(f"{key}: unknown setting{hint} remove it or correct its name")
            continue
        problems.append(f"{key} ({variable}){shown}: {message}")
    return "; ".join(problems)


def load_register_settings(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **given: Any,
) -> RegisterSettings:
    """The validated settings, or :class:`SettingsRefused` naming every setting at fault.

    ``path`` (else ``STOREFLEET_EDGE_SETTINGS_FILE``) is the file; the environment overrides it;
    ``given`` (tests, the demo) overrides both.
    """
    env = os.environ if environ is None else environ
    unknown = unknown_variables(env)
    if unknown:
        raise SettingsRefused("; ".join(unknown))
    file_path = path or (Path(env[ENV_SETTINGS_FILE]) if env.get(ENV_SETTINGS_FILE) else None)
    from_file = read_settings_file(file_path) if file_path is not None else {}
    file_token = _FILE_VALUES.set(from_file)
    env_token = _ENVIRON.set(environ)
    try:
        return RegisterSettings(**given)
    except ValidationError as err:
        where = f" (file {file_path})" if file_path is not None else ""
        raise SettingsRefused(describe(err) + where) from err
    finally:
        _FILE_VALUES.reset(file_token)
        _ENVIRON.reset(env_token)
