"""The register's settings as a reference: ``docs/register-settings.md`` and ``register --help``.

Both are generated from :class:`~edge.register.settings.RegisterSettings` (through
:mod:`edge.settings_reference`), so a setting cannot be added without its description showing in
both (a test compares the page with :func:`markdown`). Regenerate the page with
``python -m edge.register.settings_doc > docs/register-settings.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from edge import settings_reference
from edge.peripherals.register_config import RegisterDevices
from edge.register.settings import ENV_PREFIX, ENV_SETTINGS_FILE, RegisterSettings
from edge.settings_reference import SettingRow

__all__ = ["SettingRow", "help_epilog", "markdown", "rows"]


def _leaf(model: type[BaseModel]) -> bool:
    return model is RegisterDevices  # the peripherals document is one row: its own page


def _factory(factory: Any) -> str:
    return "(see section)" if factory is RegisterDevices else "—"


def rows() -> Iterator[SettingRow]:
    """Every setting, sections expanded (the peripherals document is one row: its own page)."""
    return settings_reference.rows(
        RegisterSettings, env_prefix=ENV_PREFIX, leaf=_leaf, describe_factory=_factory
    )


def markdown() -> str:
    """The reference page."""
    return settings_reference.markdown_page(
        title="Register settings",
        module="edge.register.settings_doc",
        source="edge/register/settings.py",
        intro=[
            "The register reads one settings file (TOML or JSON; `storefleet"
            " register --settings FILE`"
            f" or `{ENV_SETTINGS_FILE}`) and then the environment: every key below"
            " can be set by its"
            " variable, which wins over the file. Keys in a section are written `[section]` in TOML"
            " and with `__` in a variable. Unknown keys and variables are refused at start with the"
            " nearest known name; so is a value of the wrong type, a missing"
            " identity, and a missing"
            " catalog when the control plane cannot be reached to fetch it. Relative paths in the"
            " file are relative to the file.",
            "A register started by the fleet agent gets `DEVICE_ID` or"
            " `IDENTITY_DIR`, `BROKER_URL`,"
            " `DATA_DIR` and `AGENT_SOCKET` from the agent, which owns the appliance's identity"
            " (its own settings: `docs/agent-settings.md`).",
        ],
        settings=rows(),
        outro=[
            "The `[peripherals]` section is the register's devices (printer and drawer, scanners,"
            " RFID readers), validated by `edge/peripherals/register_config.py`,"
            " whose docstring has"
            ' an example; `preset = "simulated"` runs the simulators on loopback.',
            "The demo is this same object read from `edge/register/demo.toml`.",
        ],
    )


def help_epilog() -> str:
    """The settings for ``storefleet register --help``: one paragraph per setting."""
    return settings_reference.help_epilog(
        lead=f"Settings (file keys; each also a variable {ENV_PREFIX}KEY, sections joined by __).",
        page="docs/register-settings.md",
        settings=rows(),
    )


if __name__ == "__main__":
    print(markdown(), end="")  # noqa: T201 - the page goes to stdout
