"""The appliance renews its certificate with its own key, trusting only the pinned root."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from edge.enrolment.errors import EnrolmentRejected, NotEnrolled
from edge.enrolment.first_boot import enrol_from_qr
from edge.enrolment.renewal import due, renew_certificate
from provisioning.device_keys import DeviceIdentity
from tests.control_plane.provisioning.fleet_harness import Fleet

pytestmark = pytest.mark.services


async def test_renewal_installs_a_new_certificate_for_the_same_device_and_key(
    control_plane: Fleet, tmp_path: Path
) -> None:
    created = await control_plane.create_enrolment()
    identity_dir = tmp_path / "identity"
    enrolled = await enrol_from_qr(created["qr_text"], identity_dir=identity_dir)
    identity = DeviceIdentity(identity_dir)
    before = identity.certificate()

    renewed = await renew_certificate(identity_dir)

    assert renewed.device_id == enrolled.device_id
    assert identity.certificate().serial_number == renewed.leaf.serial_number
    assert renewed.leaf.serial_number != before.serial_number
    assert renewed.leaf.public_key() == before.public_key()


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
