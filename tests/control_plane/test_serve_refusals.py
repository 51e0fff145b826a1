"""Misconfiguration stops ``storefleet serve`` (and ``appliance``, ``register``) before anything
starts: one framed message naming the variable and the fix, exit code 2, no traceback.

Regression (issue 8): ``STOREFLEET_CP_PORT=abc``, a ``postgres://`` URL, an unreachable database,
an ``http://`` broker URL, a device id with a slash and an unset CA passphrase gave 40-150-line
tracebacks or surfaced only at the first request.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.services import free_port

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"


def run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run the CLI as a process; its output with the frame's borders and wrapping undone."""
    done = subprocess.run(
        [sys.executable, "-m", "storefleet.cli", *args],  # the product command: both sides
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "100", "TERM": "dumb", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    text = done.stdout + done.stderr
    return done.returncode, re.sub(r"[\s│╭╮╰╯─]+", " ", text)


SERVE = [
    pytest.param(
        {"STOREFLEET_CP_PORT": "abc"},
        "STOREFLEET_CP_PORT=abc: Input should be a valid integer, unable to parse string as an "
        "integer; expected the TCP port of the API and console, 1-65535",
        id="port-not-a-number",
    ),
    pytest.param(
        {"STOREFLEET_CP_PORT": "70000"},
        "STOREFLEET_CP_PORT=70000: Input should be less than or equal to 65535",
        id="port-out-of-range",
    ),
    pytest.param(
        {"STOREFLEET_CP_DATABASE_URL": "postgres://fleet:s3cret@db.example:5432/fleet"},
        "STOREFLEET_CP_DATABASE_URL: postgres://fleet:***@db.example:5432/fleet names no driver "
        "this control plane has; use the asyncpg one: "
        "postgresql+asyncpg://fleet:***@db.example:5432/fleet",
        id="postgres-url",
    ),
    pytest.param(
        {"STOREFLEET_CP_DATABASE_URL": "mysql://db.example/fleet"},
        "STOREFLEET_CP_DATABASE_URL: mysql://db.example/fleet: the control plane stores in SQLite "
        "or PostgreSQL",
        id="another-database",
    ),
    pytest.param(
        {"STOREFLEET_CP_DATABASE_URL": f"{PG.rsplit(':', 1)[0]}:{free_port()}/fleet"},
        "STOREFLEET_CP_DATABASE_URL: the database at postgresql+asyncpg://postgres@127.0.0.1:",
        id="database-unreachable",
    ),
    pytest.param(
        {"STOREFLEET_CP_DATABASE_URL": f"{PG}/no_such_database_here"},
        'does not answer: InvalidCatalogNameError: database "no_such_database_here" does not '
        "exist; start the database or fix the URL",
        id="database-missing",
    ),
    pytest.param(
        {"STOREFLEET_CP_BROKER_URL": "http://127.0.0.1:1883"},
        "STOREFLEET_CP_BROKER_URL: broker URL 'http://127.0.0.1:1883' must start with mqtt:// "
        "or mqtts://",
        id="http-broker-url",
    ),
    pytest.param(
        {"STOREFLEET_CP_BROKER_URL": "mqtts://127.0.0.1:8883"},
        "set a long random STOREFLEET_CA_PASSPHRASE (or STOREFLEET_CA_DEMO=1 for a throw-away "
        "demo) (STOREFLEET_CP_BROKER_URL is mqtts://",
        id="mqtts-without-ca-passphrase",
    ),
    pytest.param(
        {"STOREFLEET_CA_DIRECTORY": "/var/lib/storefleet/ca"},
        "set a long random STOREFLEET_CA_PASSPHRASE (or STOREFLEET_CA_DEMO=1 for a throw-away "
        "demo) (provisioning is set up by STOREFLEET_CA_DIRECTORY)",
        id="ca-directory-without-passphrase",
    ),
    pytest.param(
        {"STOREFLEET_CA_PASSPHRASE": "a long enough passphrase", "STOREFLEET_CA_PUBLIC_URL": "x"},
        "STOREFLEET_CA_PUBLIC_URL: 'x' is not an http:// or https:// URL with a host",
        id="ca-public-url",
    ),
    pytest.param(
        {"STOREFLEET_CP_TLS_CERT": "/etc/hostname"},
        "set both STOREFLEET_CP_TLS_CERT and STOREFLEET_CP_TLS_KEY to serve HTTPS, or neither",
        id="tls-cert-without-key",
    ),
    pytest.param(
        {"STOREFLEET_CP_TLS_CERT": "/nowhere/cert.pem", "STOREFLEET_CP_TLS_KEY": "/etc/hostname"},
        "STOREFLEET_CP_TLS_CERT=/nowhere/cert.pem is not a readable file",
        id="tls-cert-missing",
    ),
    pytest.param(
        {"STOREFLEET_CP_TRUSTED_PROXIES": "10.0.0.1,proxy.example"},
        "STOREFLEET_CP_TRUSTED_PROXIES=10.0.0.1,proxy.example: 'proxy.example' is not an IP "
        "address or network",
        id="trusted-proxy-not-an-address",
    ),
    pytest.param(
        {"STOREFLEET_CP_ALLOWED_HOSTS": "fleet.example,*fleet.example"},
        "'*fleet.example': a wildcard is written '*.example.com'",
        id="allowed-host-bad-wildcard",
    ),
    pytest.param(
        {"STOREFLEET_CP_INGEST_PARTITIONS": "0"},
        "STOREFLEET_CP_INGEST_PARTITIONS=0: Input should be greater than or equal to 1",
        id="no-partitions",
    ),
    pytest.param(
        {"STOREFLEET_CP_NOTIFY_SMTP_PORT": "0", "STOREFLEET_CP_NOTIFY_SMTP_PASSWORD": "s3cret"},
        "STOREFLEET_CP_NOTIFY_SMTP_PORT=0: Input should be greater than or equal to 1",
        id="smtp-port",
    ),
]


@pytest.mark.services
@pytest.mark.parametrize(("env", "message"), SERVE)
def test_serve_refuses_a_bad_setting_before_it_starts(
    env: dict[str, str], message: str, tmp_path: Path
) -> None:
    code, output = run(["serve"], env, tmp_path)
    assert code == 2, output
    assert message in output
    assert "Invalid value:" in output  # typer's frame, as for `storefleet register`
    assert "Traceback" not in output
    assert "s3cret" not in output
    assert not (tmp_path / ".storefleet").exists()  # nothing was started or created


DEVICE_ID = [
    pytest.param(
        ["appliance", "--device-id", "store/1", "--ledger", "ledger.db"],
        {},
        "STOREFLEET_EDGE_DEVICE_ID=store/1: device id 'store/1' must be 3-63 characters of a-z, "
        "0-9 and '-', starting with a letter or digit (set by STOREFLEET_EDGE_DEVICE_ID) (here: "
        "--device-id)",
        id="appliance",
    ),
    pytest.param(
        ["register"],  # its settings come from a file and STOREFLEET_EDGE_* (edge/register)
        {"STOREFLEET_EDGE_DEVICE_ID": "store/1", "STOREFLEET_EDGE_DATA_DIR": "."},
        "device_id (STOREFLEET_EDGE_DEVICE_ID) (given 'store/1'): device id 'store/1' must be "
        "3-63 characters of a-z, 0-9 and '-', starting with a letter or digit",
        id="register",
    ),
]


@pytest.mark.parametrize(("args", "env", "message"), DEVICE_ID)
def test_a_device_id_with_a_slash_is_refused_by_name(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    code, output = run(args, env, tmp_path)
    assert code == 2, output
    assert message in output
    assert "Traceback" not in output
    assert not (tmp_path / "ledger.db").exists()
