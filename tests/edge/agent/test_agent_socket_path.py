"""A local socket path too long for Linux is refused at start, naming the setting (issue 10).

Found in CI: under pytest-xdist a test's data directory was long enough that
``<data_dir>/run/agent.sock`` passed 107 bytes; the agent only failed when it bound the socket,
with "AF_UNIX path too long" and a traceback, and its register never started.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.agent.settings import UNIX_PATH_MAX, AgentSettingsRefused, load_agent_settings


def test_a_data_dir_too_deep_for_the_socket_is_refused_naming_the_setting(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * (UNIX_PATH_MAX - len(str(tmp_path))))
    with pytest.raises(AgentSettingsRefused) as refused:
        load_agent_settings(environ={}, device_id="reg-1", data_dir=deep)
    assert "STOREFLEET_AGENT_SOCKET_PATH" in str(refused.value)
    assert "Unix socket" in str(refused.value)


def test_a_short_socket_path_lets_a_deep_data_dir_through(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * (UNIX_PATH_MAX - len(str(tmp_path))))
    settings = load_agent_settings(
        environ={}, device_id="reg-1", data_dir=deep, socket_path=tmp_path / "a.sock"
    )
    assert settings.socket == tmp_path / "a.sock"


def test_the_default_socket_fits_on_an_appliance() -> None:
    settings = load_agent_settings(environ={}, device_id="reg-1")
    assert len(str(settings.socket)) <= UNIX_PATH_MAX
