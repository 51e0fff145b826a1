"""`storefleet provision` and `enrol` against the served control plane (CliRunner in a thread)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from provisioning.enrolment import parse_qr
from storefleet.cli import app
from tests.control_plane.provisioning.fleet_harness import STORE, TENANT, Fleet
from tests.harness.scan import read_qr_codes

pytestmark = [
    pytest.mark.services,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]
runner = CliRunner()


async def _run(
    fleet: Fleet, *args: str, group: tuple[str, ...] = ("provision",), token: str | None = None
) -> Result:
    """The command in a worker thread, so this loop keeps serving the control plane; as the
    platform admin unless ``token`` says otherwise."""
    env = {
        "STOREFLEET_API_URL": fleet.url,
        "STOREFLEET_API_TOKEN": fleet.admin_token if token is None else token,
        "COLUMNS": "200",
    }
    return await asyncio.to_thread(runner.invoke, app, [*group, *args], env=env)


async def _enrol(fleet: Fleet, qr_text: str, identity_dir: Path) -> Result:
    """The field tech's `storefleet enrol`: the appliance's command, not under `provision`."""
    return await _run(
        fleet, "enrol", "--qr", qr_text, "--identity-dir", str(identity_dir), group=()
    )


async def test_enrol_create_saves_a_scannable_qr_and_a_sheet(fleet: Fleet, tmp_path: Path) -> None:
    png, pdf = tmp_path / "qr.png", tmp_path / "sheet.pdf"

    result = await _run(
        fleet, "enrol-create", "--tenant", TENANT, "--store", STORE, "--register", "till 4",
        "--png", str(png), "--pdf", str(pdf),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    payload = parse_qr(read_qr_codes(png.read_bytes())[0])
    assert (payload.store_id, payload.control_plane_url) == (STORE, fleet.url)
    assert pdf.read_bytes().startswith(b"%PDF")
    pending = (await fleet.api.get("/api/enrolments", params={"state": "pending"})).json()
    assert [e["register_name"] for e in pending] == ["till 4"]


async def test_an_appliance_enrols_and_the_operator_sees_then_decommissions_it(
    fleet: Fleet, tmp_path: Path
) -> None:
    created = await fleet.create_enrolment()

    enrolled = await _enrol(fleet, created["qr_text"], tmp_path / "id")
    device_id = (await fleet.enrolment(created["enrolment"]["id"]))["device_id"]
    status = await _run(fleet, "device-status", device_id)
    retired = await _run(fleet, "decommission", device_id, "--yes", "--by", "ops")
    after = await _run(fleet, "device-status", device_id)

    assert enrolled.exit_code == 0, enrolled.output
    assert f"enrolled as {device_id}" in enrolled.output
    assert (status.exit_code, "valid" in status.output) == (0, True)
    assert retired.exit_code == 0, retired.output
    assert "CRL rewritten" in retired.output
    assert "revoked (cessationOfOperation)" in after.output


async def test_replace_prints_the_new_enrolment_for_the_same_store(
    fleet: Fleet, tmp_path: Path
) -> None:
    created = await fleet.create_enrolment()
    await _enrol(fleet, created["qr_text"], tmp_path / "id")
    device_id = (await fleet.enrolment(created["enrolment"]["id"]))["device_id"]

    result = await _run(fleet, "replace", device_id, "--created-by", "ops")

    assert result.exit_code == 0, result.output
    assert f"{device_id} is retired when the new appliance enrols" in result.output
    pending = (await fleet.api.get("/api/enrolments", params={"state": "pending"})).json()
    assert [e["replaces_device_id"] for e in pending] == [device_id]


async def test_a_refusal_ends_the_command_with_the_reason(fleet: Fleet) -> None:
    result = await _run(fleet, "decommission", "no-such-device", "--yes")

    assert result.exit_code == 1
    assert "[device_not_found]" in result.output


async def test_without_a_token_the_command_is_refused_and_says_what_to_set(fleet: Fleet) -> None:
    result = await _run(fleet, "device-status", "no-such-device", token="")

    assert result.exit_code == 1
    assert "answered 401" in " ".join(result.output.split())
    assert "STOREFLEET_API_TOKEN" in result.output


async def test_crl_refresh_rewrites_the_brokers_crl(fleet: Fleet) -> None:
    crl_file = fleet.authority.settings.crl_file
    assert crl_file is not None

    result = await _run(fleet, "crl-refresh")

    assert result.exit_code == 0, result.output
    assert crl_file.read_bytes().startswith(b"-----BEGIN X509 CRL-----")
