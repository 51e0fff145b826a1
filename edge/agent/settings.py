"""The fleet agent's one settings object: a TOML or JSON file, then ``STOREFLEET_AGENT_*``.

The agent owns the appliance's identity, so identity is set here and handed down: the register
it starts gets ``STOREFLEET_EDGE_DEVICE_ID`` / ``IDENTITY_DIR``, ``BROKER_URL``, ``DATA_DIR``,
``AGENT_SOCKET`` and ``SETTINGS_FILE`` from the agent's environment for it, so the two can never
disagree about who the appliance is. Unknown keys and variables are refused like the register's
(:mod:`edge.register.settings` explains why); this module imports pydantic only, because the
agent stays small.

The app directory (``app_dir``): ``<app_dir>/current`` is a symbolic link to the active slot
(``<app_dir>/slots/<release>``); a slot with ``bin/python`` runs the register with that
interpreter (a virtual environment per release), otherwise the register is the package this
agent was installed with — today's single slot. See ``docs/agent-register-contract.md``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from protocols.broker_url import BrokerAddress, parse_broker_url
from protocols.errors import UnknownTopic
from protocols.topics import validate_device_id

ENV_PREFIX = "STOREFLEET_AGENT_"
#: The longest path a Unix socket can be bound at on Linux (``sun_path`` is 108 bytes with its NUL).
UNIX_PATH_MAX = 107
ENV_SETTINGS_FILE = f"{ENV_PREFIX}SETTINGS_FILE"
DEFAULT_DATA_DIR = Path("/var/lib/storefleet")
_RAW_KEY = re.compile(r"[A-Za-z0-9_-]{43}")
#: Settings given in the environment as JSON lists.
_JSON_LISTS = ("register_argv", "trusted_release_keys")


class AgentSettingsRefused(ValueError):  # noqa: N818 - named for what the operator is told
    """The settings cannot start the agent; the message names each setting and the fix."""


class FleetAgentSettings(BaseModel):
    """Everything the fleet agent is told at start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: str = Field(
        default="", description="a fixed device id on a plain broker (bench, demo, tests)"
    )
    identity_dir: Path | None = Field(
        default=None, description="key, certificate and enrolment of an enrolling appliance"
    )
    broker_url: str = Field(
        default="mqtt://127.0.0.1:1883",
        description="broker of a fixed device_id (an enrolled appliance uses the enrolment's)",
    )
    control_plane_url: str | None = Field(
        default=None,
        description="where logs are uploaded (an enrolled appliance uses the enrolment's)",
    )
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="the appliance's data directory, shared with the"
        " register (ledger, store document, logs, socket)",
    )
    app_dir: Path | None = Field(
        default=None, description="app slots; default <data_dir>/app (current -> slots/<release>)"
    )
    register_settings: Path | None = Field(
        default=None, description="the register's settings file, handed to it"
    )
    register_argv: tuple[str, ...] = Field(
        default=(),
        description="how to start the register; default: the active slot's python -m edge.cli"
        " register",
    )
    socket_path: Path | None = Field(
        default=None, description="the local socket; default <data_dir>/run/agent.sock"
    )
    heartbeat_timeout_s: float = Field(
        default=10.0, gt=0, description="a running register silent this long is restarted"
    )
    start_timeout_s: float = Field(
        default=60.0, gt=0, description="a register that has not said hello by then is restarted"
    )
    stop_timeout_s: float = Field(
        default=10.0, gt=0, description="SIGTERM, then SIGKILL after this long"
    )
    backoff_initial_s: float = Field(
        default=0.5, ge=0, description="pause before the 2nd restart in a row, doubling after"
    )
    backoff_max_s: float = Field(default=60.0, gt=0, description="longest pause between restarts")
    crash_loop_after: int = Field(
        default=5, ge=1, description="failed starts in a row that make a crash loop"
    )
    stable_after_s: float = Field(
        default=30.0, gt=0, description="a register ready this long has its failures forgotten"
    )
    command_timeout_s: float = Field(
        default=30.0, gt=0, description="longest wait for the register to answer a command"
    )
    state_interval_s: float = Field(
        default=60.0, gt=0, description="retained state at least this often"
    )
    log_max_bytes: int = Field(
        default=5 * 1024 * 1024, gt=0, description="the register's log is rotated past this size"
    )
    upload_max_bytes: int = Field(
        default=512 * 1024, gt=0, le=1024 * 1024, description="most log bytes one upload sends"
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="address the agent's own /metrics listens on"
    )
    metrics_port: int = Field(
        default=9101,
        ge=0,
        le=65535,
        description="port of the agent's own Prometheus /metrics (not the register's); 0: none",
    )
    renewal_check_s: float = Field(
        default=6 * 3600.0, gt=0, description="how often the certificate's expiry is looked at"
    )
    # -- releases (edge.agent.releases) ---------------------------------------------------------
    trusted_release_keys: tuple[str, ...] = Field(
        default=(),
        description="Ed25519 public keys (base64url, from storefleet release keygen) a release"
        " bundle must be signed by; several at once for rotation; none: every release refused",
    )
    release_health_window_s: float = Field(
        default=120.0, gt=0, description="a new release must stay healthy this long to commit"
    )
    release_max_lag_s: float = Field(
        default=300.0, gt=0, description="replication lag above this fails the health window"
    )
    release_lease_max_s: float = Field(
        default=900.0, gt=0, description="longest wait for the register's update lease (a sale)"
    )
    release_download_timeout_s: float = Field(
        default=1800.0, gt=0, description="deadline for a bundle's download (with resumes)"
    )
    release_install_timeout_s: float = Field(
        default=600.0, gt=0, description="deadline for verifying and installing into a slot"
    )
    # -- the OS slot (edge.agent.os_update) ------------------------------------------------------
    os_boot_state: Path = Field(
        default=Path("/run/storefleet-os/boot-state"),
        description="the image's boot state (OS slot, an update tried, committed or reverted),"
        " written by its storefleet-os-state.service; absent off the image: nothing reported",
    )

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        if value:
            try:
                validate_device_id(value)
            except UnknownTopic as err:
                raise ValueError(err.reason) from err
        return value

    @field_validator("trusted_release_keys")
    @classmethod
    def _release_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # the shape only: loading the keys needs cryptography, which the agent imports when a
        # release arrives, not at start (see edge.agent.process)
        for index, text in enumerate(value):
            if not (_RAW_KEY.fullmatch(text.strip()) or text.strip().startswith("-----BEGIN")):
                msg = (
                    f"key {index + 1} is neither a base64url Ed25519 public key (43 characters,"
                    " as storefleet release keygen prints it) nor a PEM public key"
                )
                raise ValueError(msg)
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    @model_validator(mode="after")
    def _who_am_i(self) -> FleetAgentSettings:
        if bool(self.device_id) == (self.identity_dir is not None):
            msg = (
                f"identity: set exactly one of {ENV_PREFIX}IDENTITY_DIR (identity_dir: an appliance"
                f" that enrols with a QR code) and {ENV_PREFIX}DEVICE_ID (device_id: a fixed id on"
                " a plain broker)"
            )
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _socket_fits(self) -> FleetAgentSettings:
        # Linux keeps a Unix socket's path in 108 bytes with its NUL: a longer one fails only when
        # the agent binds it ("AF_UNIX path too long"), after start, so it is refused here by name.
        length = len(os.fsencode(self.socket))
        if length > UNIX_PATH_MAX:
            msg = (
                f"socket_path: {self.socket} is {length} bytes, over the {UNIX_PATH_MAX} a Unix"
                f" socket's path can hold; set {ENV_PREFIX}SOCKET_PATH to a shorter path (e.g."
                f" /run/storefleet/agent.sock) or use a shorter {ENV_PREFIX}DATA_DIR"
            )
            raise ValueError(msg)
        return self

    @property
    def broker(self) -> BrokerAddress:
        """Parsed broker address of a fixed device id."""
        return parse_broker_url(self.broker_url)

    @property
    def socket(self) -> Path:
        """The Unix socket the register connects to."""
        return self.socket_path or self.data_dir / "run" / "agent.sock"

    @property
    def apps(self) -> Path:
        """The app directory (slots and the ``current`` link)."""
        return self.app_dir or self.data_dir / "app"

    @property
    def logs_dir(self) -> Path:
        """Where the register's output is kept."""
        return self.data_dir / "logs"


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise AgentSettingsRefused(
            f"{ENV_SETTINGS_FILE}={path}: cannot read it ({err.strerror}); set it (or --settings)"
            " to the agent's settings file"
        ) from err
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as err:
        raise AgentSettingsRefused(f"{path}: not valid {path.suffix[1:]} ({err})") from err
    if not isinstance(raw, dict):
        raise AgentSettingsRefused(f"{path}: the document must be a table/object of settings")
    return raw


def _from_environment(environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The ``STOREFLEET_AGENT_*`` values by field, and the variables that name no field."""
    fields = FleetAgentSettings.model_fields
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == ENV_SETTINGS_FILE:
            continue
        key = name.removeprefix(ENV_PREFIX).lower()
        if key not in fields:
            near = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {ENV_PREFIX}{near[0].upper()}?)" if near else ""
            unknown.append(f"{name}: unknown setting{hint}; remove it or correct its name")
            continue
        values[key] = json.loads(value) if key in _JSON_LISTS else value
    return values, unknown


def describe(err: ValidationError, *, source: str) -> str:
    """Each problem with the setting it is about (file key and variable) and what to set."""
    problems = []
    for error in err.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:
            problems.append(message)
            continue
        key = str(error["loc"][0])
        if error["type"] == "extra_forbidden":
            near = difflib.get_close_matches(key, list(FleetAgentSettings.model_fields), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            problems.append(f"{key}: unknown setting in {source}{hint}; remove it")
            continue
        given = error.get("input")
        shown = f" (given {given!r})" if isinstance(given, str | int | float) else ""
        problems.append(f"{key} ({ENV_PREFIX}{key.upper()}){shown}: {message}")
    return "; ".join(problems)


def load_agent_settings(
    path: Path | None = None, *, environ: Mapping[str, str], **given: Any
) -> FleetAgentSettings:
    """File, then environment, then ``given``; or :class:`AgentSettingsRefused`."""
    from_env, unknown = _from_environment(environ)
    if unknown:
        raise AgentSettingsRefused("; ".join(unknown))
    file_path = path or (
        Path(environ[ENV_SETTINGS_FILE]) if environ.get(ENV_SETTINGS_FILE) else None
    )
    values = _read_file(file_path) if file_path is not None else {}
    values |= from_env | given
    try:
        return FleetAgentSettings.model_validate(values)
    except ValidationError as err:
        raise AgentSettingsRefused(describe(err, source=str(file_path or "the settings"))) from err
