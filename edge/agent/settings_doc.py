"""The fleet agent's settings as a reference: ``docs/agent-settings.md`` and ``--help``.

Generated from :class:`~edge.agent.settings.FleetAgentSettings` (through
:mod:`edge.settings_reference`, pydantic only: the agent stays small), so an option cannot be
added without its variable, default and meaning showing in both; a test compares the page with
:func:`markdown`. Regenerate the page with
``python -m edge.agent.settings_doc > docs/agent-settings.md``.
"""

from __future__ import annotations

from collections.abc import Iterator

from edge import settings_reference
from edge.agent.settings import ENV_PREFIX, ENV_SETTINGS_FILE, FleetAgentSettings
from edge.settings_reference import SettingRow


def rows() -> Iterator[SettingRow]:
    """Every setting of the agent (they have no sections)."""
    return settings_reference.rows(FleetAgentSettings, env_prefix=ENV_PREFIX)


def markdown() -> str:
    """The reference page."""
    return settings_reference.markdown_page(
        title="Fleet agent settings",
        module="edge.agent.settings_doc",
        source="edge/agent/settings.py",
        intro=[
            "The fleet agent (`python -m edge.agent --settings FILE`, as its"
            " systemd unit runs it, or"
            " `storefleet agent`) reads one settings file (TOML or JSON; also"
            f" `{ENV_SETTINGS_FILE}`)"
            " and then the environment: every key below can be set by its variable, which wins over"
            ' the file (lists as JSON, e.g. `["a", "b"]`). Unknown keys and variables are'
            " refused at start with the nearest known name, as is a value of the"
            " wrong type; exactly"
            " one of `device_id` and `identity_dir` must be set.",
            "The agent hands the appliance's identity (device id or identity directory, broker,"
            " data directory, its socket) to the register it starts; the register's own settings"
            " are in `docs/register-settings.md`.",
        ],
        settings=rows(),
    )


def help_epilog() -> str:
    """The settings for ``--help``: one paragraph per setting."""
    return settings_reference.help_epilog(
        lead=f"Settings (file keys; each also a variable {ENV_PREFIX}KEY, which wins over the"
        " file).",
        page="docs/agent-settings.md",
        settings=rows(),
    )


if __name__ == "__main__":
    print(markdown(), end="")  # noqa: T201 - the page goes to stdout
