"""First-boot enrolment on the appliance against the real control plane over loopback HTTP."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest

from edge.enrolment.errors import ControlPlaneUnreachable, EnrolmentRejected, NotEnrolled
from edge.enrolment.first_boot import (
    ENROLMENT_FILE,
    enrol_from_qr,
    enrol_with_code,
    load_enrolment,
    mqtt_tls_context,
)
from edge.enrolment.settings import EnrolmentSettings
from provisioning.ca import CertificateAuthority
from provisioning.device_keys import DeviceIdentity, IdentityState
from provisioning.enrolment import encode_qr, parse_qr
from provisioning.errors import CaFingerprintMismatch, EnrolmentPayloadError, MalformedToken
from tests.control_plane.provisioning.fleet_harness import STORE, Fleet
from tests.harness.services import free_port

pytestmark = pytest.mark.services


async def test_a_scanned_qr_enrols_the_appliance(
    control_plane: Fleet, appliance_fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    created = await control_plane.create_enrolment(register_name="till 2")
    identity_dir = tmp_path / "identity"

    result = await enrol_from_qr(created["qr_text"], identity_dir=identity_dir)

    identity = DeviceIdentity(identity_dir)
    assert identity.state() is IdentityState.ENROLLED
    assert identity.device_id() == result.device_id
    assert result.device_id.startswith(f"{STORE}-")
    assert result.broker_url == "mqtts://127.0.0.1:8883"
    assert result.config["register_name"] == "till 2"
    assert result.ca_fingerprint == appliance_fleet_ca.fingerprint
    assert not result.resumed
    assert identity.ca_path.read_bytes() == appliance_fleet_ca.root_pem
    assert stat.S_IMODE(identity.key_path.stat().st_mode) == 0o600
    assert load_enrolment(identity_dir) == replace(result, resumed=True)


async def test_a_wrong_fingerprint_stops_before_the_csr_is_sent(
    control_plane: Fleet, tmp_path: Path
) -> None:
    created = await control_plane.create_enrolment()
    forged = parse_qr(created["qr_text"]).model_copy(update={"ca_fingerprint": "ab" * 32})
    identity_dir = tmp_path / "identity"

    with pytest.raises(CaFingerprintMismatch) as refused:
        await enrol_from_qr(encode_qr(forged), identity_dir=identity_dir)

    assert refused.value.expected == "ab" * 32
    assert DeviceIdentity(identity_dir).state() is IdentityState.NEW  # no key, no CSR made
    assert (await control_plane.enrolment(created["enrolment"]["id"]))["state"] == "pending"


async def test_a_power_cut_before_the_certificate_resumes_with_the_same_key(
    control_plane: Fleet, tmp_path: Path
) -> None:
    created = await control_plane.create_enrolment()
    identity_dir = tmp_path / "identity"
    identity = DeviceIdentity(identity_dir)
    token = parse_qr(created["qr_text"]).token
    # First boot got as far as the control plane's answer, then the power went.
    lost = await control_plane.api.post(
        "/api/enrol", json={"token": token, "csr_pem": identity.certificate_request().decode()}
    )
    assert lost.status_code == 200
    assert identity.state() is IdentityState.KEY_ONLY

    result = await enrol_from_qr(created["qr_text"], identity_dir=identity_dir)

    assert result.device_id == lost.json()["device_id"]
    assert identity.state() is IdentityState.ENROLLED


async def test_a_finished_enrolment_is_read_back_without_the_network(
    control_plane: Fleet, tmp_path: Path
) -> None:
    created = await control_plane.create_enrolment()
    identity_dir = tmp_path / "identity"
    first = await enrol_from_qr(created["qr_text"], identity_dir=identity_dir)
    # The same sheet, but nothing listens where it points: any request would fail.
    unreachable = parse_qr(created["qr_text"]).model_copy(
        update={"control_plane_url": f"http://127.0.0.1:{free_port()}"}
    )

    again = await enrol_from_qr(encode_qr(unreachable), identity_dir=identity_dir)

    assert (again.device_id, again.resumed) == (first.device_id, True)
    assert (identity_dir / ENROLMENT_FILE).exists()


async def test_the_typed_code_enrols_with_the_url_and_pin_from_settings(
    control_plane: Fleet, appliance_fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    created = await control_plane.create_enrolment()
    settings = EnrolmentSettings(
        control_plane_url=control_plane.url,
        ca_fingerprint=appliance_fleet_ca.fingerprint,
        identity_dir=tmp_path / "identity",
    )

    result = await enrol_with_code(created["fallback_code"], settings=settings)

    assert DeviceIdentity(settings.identity_dir).device_id() == result.device_id


async def test_a_mistyped_code_is_caught_on_the_appliance(
    control_plane: Fleet, appliance_fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    settings = EnrolmentSettings(
        control_plane_url=control_plane.url,
        ca_fingerprint=appliance_fleet_ca.fingerprint,
        identity_dir=tmp_path / "identity",
    )

    with pytest.raises(MalformedToken):
        await enrol_with_code("0000-0000-0001", settings=settings)

    assert DeviceIdentity(settings.identity_dir).state() is IdentityState.NEW


async def test_a_reused_code_is_rejected_with_the_control_planes_reason(
    control_plane: Fleet, tmp_path: Path
) -> None:
    created = await control_plane.create_enrolment()
    await enrol_from_qr(created["qr_text"], identity_dir=tmp_path / "first")

    with pytest.raises(EnrolmentRejected) as rejected:
        await enrol_from_qr(created["qr_text"], identity_dir=tmp_path / "second")

    assert (rejected.value.status, rejected.value.reason) == (409, "token_used")
    assert "ask an operator" in str(rejected.value)


async def test_a_qr_that_is_not_an_enrolment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EnrolmentPayloadError):
        await enrol_from_qr("https://example.com/menu", identity_dir=tmp_path / "identity")

    assert DeviceIdentity(tmp_path / "identity").state() is IdentityState.NEW


def test_no_tls_context_before_enrolment(tmp_path: Path) -> None:
    DeviceIdentity(tmp_path).certificate_request()  # key only: a half-finished first boot

    with pytest.raises(NotEnrolled):
        mqtt_tls_context(tmp_path)


async def test_an_unreachable_control_plane_keeps_the_appliance_new(
    control_plane: Fleet, tmp_path: Path
) -> None:
    created = await control_plane.create_enrolment()
    elsewhere = parse_qr(created["qr_text"]).model_copy(
        update={"control_plane_url": f"http://127.0.0.1:{free_port()}"}
    )

    with pytest.raises(ControlPlaneUnreachable, match="scan again"):
        await enrol_from_qr(encode_qr(elsewhere), identity_dir=tmp_path / "identity")

    assert DeviceIdentity(tmp_path / "identity").state() is IdentityState.NEW
