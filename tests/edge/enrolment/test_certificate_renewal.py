"""The appliance renews its certificates (the register's and the agent's) with its own key,
trusting only the pinned root."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from edge.agent.process import FleetAgentProcess, identity_now
from edge.agent.settings import FleetAgentSettings
from edge.enrolment.errors import EnrolmentRejected, NotEnrolled
from edge.enrolment.first_boot import enrol_from_qr
from edge.enrolment.renewal import agent_certificate_missing, due, renew_certificate
from edge.enrolment.stored import has_agent_certificate
from provisioning.device_keys import DeviceIdentity, common_name
from tests.control_plane.provisioning.fleet_harness import Fleet

pytestmark = pytest.mark.services


async def test_renewal_installs_a_new_certificate_for_the_same_device_and_key(
    control_plane: Fleet, tmp_path: Path
) -> None:
    created = await control_plane.create_enrolment()
    identity_dir = tmp_path / "identity"
    enrolled = await enrol_from_qr(created["qr_text"], identity_dir=identity_dir)
    identity = DeviceIdentity(identity_dir)
    before, agent_before = identity.certificate(), _agent_certificate(identity)

    renewed = await renew_certificate(identity_dir)

    assert renewed.device_id == enrolled.device_id
    assert identity.certificate().serial_number == renewed.leaf.serial_number
    assert renewed.leaf.serial_number != before.serial_number
    assert renewed.leaf.public_key() == before.public_key()
    agent = _agent_certificate(identity)  # renewed with it: same key, same expiry
    assert agent.serial_number != agent_before.serial_number
    assert (agent.public_key(), agent.not_valid_after_utc) == (
        before.public_key(),
        renewed.leaf.not_valid_after_utc,
    )


def _agent_certificate(identity: DeviceIdentity) -> x509.Certificate:
    return x509.load_pem_x509_certificates(identity.agent_certificate_path.read_bytes())[0]


async def test_first_boot_installs_both_certificates_of_the_one_key(
    control_plane: Fleet, tmp_path: Path
) -> None:
    created = await control_plane.create_enrolment()
    enrolled = await enrol_from_qr(created["qr_text"], identity_dir=tmp_path / "identity")
    identity = DeviceIdentity(tmp_path / "identity")

    agent = _agent_certificate(identity)

    assert common_name(agent) == f"{enrolled.device_id}.agent"
    assert agent.public_key() == identity.certificate().public_key()
    assert not agent_certificate_missing(tmp_path / "identity")


async def test_an_appliance_enrolled_with_one_certificate_gets_the_agent_s_at_renewal(
    control_plane: Fleet, tmp_path: Path
) -> None:
    """Enrolled before agents had their own: the agent asks at once (edge.agent.process)."""
    created = await control_plane.create_enrolment()
    enrolled = await enrol_from_qr(created["qr_text"], identity_dir=tmp_path / "identity")
    identity = DeviceIdentity(tmp_path / "identity")
    identity.agent_certificate_path.unlink()  # as an appliance enrolled before this has it
    assert agent_certificate_missing(tmp_path / "identity")

    await renew_certificate(tmp_path / "identity")

    assert not agent_certificate_missing(tmp_path / "identity")
    assert common_name(_agent_certificate(identity)) == f"{enrolled.device_id}.agent"


async def test_renewal_is_due_a_month_before_expiry(control_plane: Fleet, tmp_path: Path) -> None:
    created = await control_plane.create_enrolment()
    await enrol_from_qr(created["qr_text"], identity_dir=tmp_path / "identity")
    expiry = DeviceIdentity(tmp_path / "identity").certificate().not_valid_after_utc

    assert not due(tmp_path / "identity", now=expiry - timedelta(days=31))
    assert due(tmp_path / "identity", now=expiry - timedelta(days=29))


async def test_a_decommissioned_appliance_cannot_renew(
    control_plane: Fleet, tmp_path: Path
) -> None:
    created = await control_plane.create_enrolment()
    enrolled = await enrol_from_qr(created["qr_text"], identity_dir=tmp_path / "identity")
    await control_plane.api.post(f"/api/devices/{enrolled.device_id}/decommission", json={})

    with pytest.raises(EnrolmentRejected) as rejected:
        await renew_certificate(tmp_path / "identity")

    assert rejected.value.reason == "device_decommissioned_refused"


async def test_renewal_needs_an_enrolment(tmp_path: Path) -> None:
    with pytest.raises(NotEnrolled):
        await renew_certificate(tmp_path / "identity")


async def test_the_agent_of_an_appliance_without_its_certificate_renews_at_once(
    control_plane: Fleet, tmp_path: Path
) -> None:
    """It stays off the broker meanwhile: the device certificate's session is the register's."""
    created = await control_plane.create_enrolment()
    await enrol_from_qr(created["qr_text"], identity_dir=tmp_path / "identity")
    (tmp_path / "identity" / "agent.crt.pem").unlink()
    settings = FleetAgentSettings(
        identity_dir=tmp_path / "identity",
        data_dir=tmp_path / "data",
        renewal_check_s=3600,  # not due for months: only the missing certificate makes it ask
    )
    agent = FleetAgentProcess(settings, supervise=False)
    assert identity_now(settings) is None  # no broker session without its own certificate
    assert identity_now(settings, fallback=True) is not None  # the device's, for an old cloud

    async with asyncio.timeout(30), asyncio.TaskGroup() as tasks:  # guards a hang only
        renewal = tasks.create_task(agent._renewal(), name="renewal")
        while not has_agent_certificate(tmp_path / "identity"):  # noqa: ASYNC110 - a file
            await asyncio.sleep(0.05)
        renewal.cancel()

    identity = identity_now(settings)
    assert identity is not None
    assert identity.tls_context is not None
    assert not agent.agent_certificate_refused
