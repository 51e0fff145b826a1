"""The appliance's systemd units, users and data directory, checked by systemd's own tools.

How it works: ``systemd-analyze verify`` refuses a unit whose ``ExecStart=`` binary is not on the
machine and whose dependencies cannot be loaded, so each check builds a small system root in a
temporary directory — this machine's own unit files (the targets our units order against), stub
executables at the paths the image installs (the image issue installs and boots the real ones),
and our units where the image puts them — and runs the tool with ``--root`` on it. verify prints
a warning (unknown key, bad value) and still exits 0, so any output at all counts as a problem:
a misspelt ``ProtectSytem=strict`` would otherwise leave the agent unsandboxed in silence.
``systemd-sysusers`` and ``systemd-tmpfiles`` run on such a root too, for real.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "images" / "systemd"
HOST_UNITS = Path("/usr/lib/systemd/system")
UNIT_DIR = "usr/lib/systemd/system"

#: what the appliance image installs at these paths (stubbed here)
IMAGE_BINARIES = (
    "usr/lib/storefleet/bin/storefleet-appliance",
    "usr/lib/storefleet/bin/python",  # runs the kiosk session's notify wrapper
    "usr/bin/cage",
    "usr/bin/chromium",
)
UNITS = sorted(p for p in SYSTEMD.iterdir() if p.suffix in {".service", ".socket", ".timer"})
DATA_DIR = "/var/lib/storefleet"
ENV = {**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def system_root(base: Path, units: Mapping[str, str]) -> Path:
    """A root with the host's units, stub image binaries and ``units`` (name -> text)."""
    root = base / "root"
    shutil.copytree(HOST_UNITS, root / UNIT_DIR, symlinks=True)
    for binary in IMAGE_BINARIES:
        path = root / binary
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(0o755)
    for name, text in units.items():
        (root / UNIT_DIR / name).write_text(text)
    return root


def verify(base: Path, units: Mapping[str, str], name: str) -> list[str]:
    """What ``systemd-analyze verify`` says about ``name`` among ``units``: nothing if sound."""
    root = system_root(base, units)
    done = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "--man=no", f"/{UNIT_DIR}/{name}"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        check=False,
    )
    said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return said or ([] if done.returncode == 0 else [f"exit status {done.returncode}"])


def shipped() -> dict[str, str]:
    return {unit.name: unit.read_text() for unit in UNITS}


def settings(text: str) -> dict[str, list[str]]:
    """``Key`` -> every value it is given in a unit (systemd allows a key several times)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_units_are_there() -> None:
    """Guards the checks below against an empty directory."""
    assert [unit.name for unit in UNITS] == ["storefleet-agent.service", "storefleet-kiosk.service"]


@pytest.mark.parametrize("unit", [u.name for u in UNITS])
def test_every_unit_passes_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    assert verify(tmp_path, shipped(), unit) == []


AGENT = "storefleet-agent.service"

BROKEN = [
    pytest.param("ProtectSystem=strict", "ProtectSytem=strict", id="misspelt-key"),
    pytest.param("Type=notify", "Type=notifyy", id="bad-value"),
    pytest.param("WatchdogSec=30s", "WatchdogSec=thirty", id="bad-time"),
    pytest.param(
        "ExecStart=/usr/lib/storefleet/bin/storefleet-appliance",
        "ExecStart=/usr/lib/storefleet/bin/storefleet-agnet",
        id="missing-binary",
    ),
    pytest.param(
        "Wants=network-online.target", "Requires=no-such-thing.service", id="missing-dependency"
    ),
    pytest.param("[Service]", "[Servce]", id="unknown-section"),
]


@pytest.mark.parametrize(("sound", "broken"), BROKEN)
def test_a_broken_unit_fails_the_check(sound: str, broken: str, tmp_path: Path) -> None:
    """The check can fail: each of these mistakes in the agent's unit is reported."""
    lines = shipped()[AGENT].splitlines(keepends=True)
    at = next(n for n, line in enumerate(lines) if line.startswith(sound))  # not in a comment
    lines[at] = lines[at].replace(sound, broken, 1)

    assert verify(tmp_path, {AGENT: "".join(lines)}, AGENT) != []


@pytest.mark.parametrize("name", [AGENT, "storefleet-kiosk.service"])
def test_each_unit_is_a_watched_notify_service_logging_to_journald(name: str) -> None:
    unit = settings(shipped()[name])

    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert unit["WatchdogSec"] == ["30s"]
    assert unit["Restart"] == ["always"]
    assert unit["StandardOutput"] == unit["StandardError"] == ["journal"]


def test_the_agent_is_a_watched_notify_service_logging_to_journald() -> None:
    unit = settings(shipped()[AGENT])

    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert unit["WatchdogSec"] == ["30s"]
    assert unit["Restart"] == ["always"]
    assert unit["StandardOutput"] == unit["StandardError"] == ["journal"]
    assert unit["ExecStart"][0].split()[:2] == [
        "/usr/lib/storefleet/bin/storefleet-appliance",
        "agent",
    ]


@pytest.mark.parametrize(
    ("unit", "user"),
    [
        pytest.param(AGENT, "storefleet", id="agent"),
        pytest.param("storefleet-kiosk.service", "storefleet-kiosk", id="kiosk"),
    ],
)
def test_each_unit_is_sandboxed_as_its_own_user(unit: str, user: str) -> None:
    found = settings(shipped()[unit])

    assert found["User"] == [user]
    assert found["ProtectSystem"] == ["strict"]
    assert found["NoNewPrivileges"] == ["yes"]
    assert found["PrivateTmp"] == ["yes"]
    assert found["ProtectHome"] == ["yes"]
    assert found["CapabilityBoundingSet"] == [""]


def test_the_agent_writes_only_under_the_data_directory() -> None:
    found = settings(shipped()[AGENT])

    writable = [path for line in found["ReadWritePaths"] for path in line.split()]
    assert writable == [DATA_DIR]
    for key in ("StateDirectory", "RuntimeDirectory", "CacheDirectory", "LogsDirectory"):
        assert key not in found  # each would add a writable path outside the data directory


def test_the_kiosk_runs_chromium_in_cage_on_the_registers_page_and_comes_back() -> None:
    found = settings(shipped()["storefleet-kiosk.service"])

    wrapper, _, session = found["ExecStart"][0].partition(" -- ")
    assert wrapper.split() == [
        "/usr/lib/storefleet/bin/python",
        "-m",
        "edge.agent.kiosk_session",
        "--url",
        "${KIOSK_URL}",
    ]
    command = session.split()
    assert command[:3] == ["/usr/bin/cage", "-d", "--"]
    assert command[3] == "/usr/bin/chromium"
    assert "--kiosk" in command
    # a till calls nobody but its register: no background fetches, no component updates
    assert {"--disable-background-networking", "--disable-component-update"} <= set(command)
    assert command[-1] == "${KIOSK_URL}"
    assert found["Environment"][0] == "KIOSK_URL=http://127.0.0.1:8080/"
    assert found["Restart"] == ["always"]
    assert found["StartLimitIntervalSec"] == ["0"]


EXPOSURE = re.compile(r"Overall exposure level for (\S+): ([0-9.]+)")


@pytest.mark.parametrize(
    ("unit", "at_most"),
    [
        pytest.param(AGENT, 2.5, id="agent"),  # 1.9 when written (systemd 252)
        pytest.param("storefleet-kiosk.service", 5.0, id="kiosk"),  # 4.0: a browser needs more
    ],
)
def test_systemd_rates_the_sandbox(unit: str, at_most: float, tmp_path: Path) -> None:
    """``systemd-analyze security`` (0 = locked down, 10 = exposed) on the unit file itself."""
    root = system_root(tmp_path, shipped())
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--root={root}", f"/{UNIT_DIR}/{unit}"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        check=False,
    )
    found = EXPOSURE.search(done.stdout + done.stderr)

    assert found is not None, done.stdout + done.stderr
    assert found.group(1) == unit
    assert float(found.group(2)) <= at_most


def _sysusers_root(base: Path) -> Path:
    root = base / "root"
    (root / "etc").mkdir(parents=True)
    for directory, name, source in (
        ("usr/lib/sysusers.d", "storefleet.conf", "storefleet.sysusers"),
        ("usr/lib/tmpfiles.d", "storefleet.conf", "storefleet.tmpfiles"),
    ):
        (root / directory).mkdir(parents=True)
        shutil.copy(SYSTEMD / source, root / directory / name)
    return root


def _run(*argv: str) -> None:
    subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=60, check=True)


def test_sysusers_makes_the_services_users_without_a_login(tmp_path: Path) -> None:
    root = _sysusers_root(tmp_path)

    _run("systemd-sysusers", f"--root={root}")

    users = {
        line.split(":")[0]: line.split(":")
        for line in (root / "etc/passwd").read_text().splitlines()
    }
    assert set(users) == {"storefleet", "storefleet-kiosk", "support"}
    assert users["storefleet"][5:] == [DATA_DIR, "/usr/sbin/nologin"]
    assert users["storefleet-kiosk"][6] == "/usr/sbin/nologin"
    assert users["storefleet"][2] != users["storefleet-kiosk"][2]
    # support logs in over SSH only (keys; libexec/support-access): a shell, never a password
    assert users["support"][6] == "/bin/bash"
    shadow = {
        line.split(":")[0]: line.split(":")[1]
        for line in (root / "etc/shadow").read_text().splitlines()
    }
    assert shadow["support"].startswith("!")


def test_tmpfiles_makes_the_data_directory_the_agents_alone(tmp_path: Path) -> None:
    root = _sysusers_root(tmp_path)
    _run("systemd-sysusers", f"--root={root}")

    _run("systemd-tmpfiles", f"--root={root}", "--create")

    data = (root / DATA_DIR.lstrip("/")).stat()
    uid = next(
        int(line.split(":")[2])
        for line in (root / "etc/passwd").read_text().splitlines()
        if line.startswith("storefleet:")
    )
    assert (data.st_uid, data.st_gid, data.st_mode & 0o7777) == (uid, uid, 0o750)
