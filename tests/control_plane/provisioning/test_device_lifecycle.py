"""After enrolment: renewal for the same key, decommission with revocation and CRL, refusals."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edge.enrolment.device_auth import DeviceAuth
from provisioning import device_assertion
from provisioning.ca import CertificateAuthority
from provisioning.device_keys import DeviceIdentity
from provisioning.enrolment import parse_qr
from tests.control_plane.provisioning.fleet_harness import Fleet

pytestmark = pytest.mark.services


async def _enrolled(fleet: Fleet, directory: Path, ca: CertificateAuthority) -> DeviceIdentity:
    created = await fleet.create_enrolment()
    identity = DeviceIdentity(directory)
    body = {
        "token": parse_qr(created["qr_text"]).token,
        "csr_pem": identity.certificate_request().decode(),
    }
    answer = (await fleet.api.post("/api/enrol", json=body)).json()
    identity.install_agent(
        answer["agent_certificate_chain_pem"].encode(),
        device_id=answer["device_id"],
        pinned_fingerprint=ca.fingerprint,
    )
    identity.install(answer["certificate_chain_pem"].encode(), pinned_fingerprint=ca.fingerprint)
    return identity


def signed(identity: DeviceIdentity) -> dict[str, str]:
    """The device's own assertion: renewal is a device route (``device_auth``)."""
    return {"Authorization": f"Bearer {DeviceAuth(identity.directory).assertion()}"}


async def test_renewal_with_the_current_key_issues_a_new_certificate(
    fleet: Fleet, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    identity = await _enrolled(fleet, tmp_path / "appliance", fleet_ca)
    device_id = identity.device_id()

    response = await fleet.api.post(
        f"/api/devices/{device_id}/renew",
        json={"csr_pem": identity.certificate_request().decode()},
        headers=signed(identity),
    )

    assert response.status_code == 200, response.text
    renewed = identity.install(
        response.json()["certificate_chain_pem"].encode(), pinned_fingerprint=fleet_ca.fingerprint
    )
    agent = identity.install_agent(
        response.json()["agent_certificate_chain_pem"].encode(),
        device_id=device_id,
        pinned_fingerprint=fleet_ca.fingerprint,
    )
    assert (renewed.device_id, agent.device_id) == (device_id, f"{device_id}.agent")
    listed = (await fleet.api.get(f"/api/devices/{device_id}/certificates")).json()
    assert sorted(c["kind"] for c in listed) == ["agent", "agent", "device", "device"]
    assert {format(renewed.leaf.serial_number, "x"), format(agent.leaf.serial_number, "x")} <= {
        c["serial"] for c in listed
    }
    assert {c["revoked_at"] for c in listed} == {None}  # the old ones expire on their own


@pytest.mark.parametrize(
    "subject",
    [pytest.param("{id}", id="naming-the-device"), pytest.param("{id}.agent", id="naming-itself")],
)
async def test_a_device_call_signed_with_the_agent_certificate_is_refused(
    fleet: Fleet, fleet_ca: CertificateAuthority, tmp_path: Path, subject: str
) -> None:
    """The agent's certificate is for its broker session only: device HTTPS calls are signed
    with the device certificate (same key), so accepting the agent's would add nothing."""
    identity = await _enrolled(fleet, tmp_path / "appliance", fleet_ca)
    device_id = identity.device_id()
    agent = x509.load_pem_x509_certificates(identity.agent_certificate_path.read_bytes())[0]
    key = serialization.load_pem_private_key(identity.key_path.read_bytes(), password=None)
    token = device_assertion.mint(
        private_key=key,
        certificate=agent,
        device_id=subject.format(id=device_id),
        now=time.time(),
    )

    response = await fleet.api.post(
        f"/api/devices/{device_id}/renew",
        json={"csr_pem": identity.certificate_request().decode()},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 401
    assert response.json()["reason"] == "device_certificate_refused"
    assert "agent" in response.json()["detail"]


async def test_renewal_with_another_key_is_refused(
    fleet: Fleet, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    identity = await _enrolled(fleet, tmp_path / "appliance", fleet_ca)
    stranger = DeviceIdentity(tmp_path / "stranger").certificate_request()
    before = await fleet.refusals("renewal_refused")

    response = await fleet.api.post(
        f"/api/devices/{identity.device_id()}/renew",
        json={"csr_pem": stranger.decode()},
        headers=signed(identity),
    )

    assert response.status_code == 403
    assert response.json()["reason"] == "renewal_refused"
    assert await fleet.refusals("renewal_refused") == before + 1


async def test_decommission_revokes_every_certificate_and_lists_it_in_the_crl(
    fleet: Fleet, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    identity = await _enrolled(fleet, tmp_path / "appliance", fleet_ca)
    device_id = identity.device_id()

    response = await fleet.api.post(
        f"/api/devices/{device_id}/decommission", json={"decommissioned_by": "ops"}
    )

    assert response.status_code == 200, response.text
    serial = format(identity.certificate().serial_number, "x")
    agent_serial = format(
        x509.load_pem_x509_certificates(identity.agent_certificate_path.read_bytes())[
            0
        ].serial_number,
        "x",
    )
    assert sorted(response.json()["revoked_serials"]) == sorted([serial, agent_serial])
    assert response.json()["crl_written"] is True
    crl = x509.load_pem_x509_crl((await fleet.api.get("/api/crl.pem")).content)
    assert crl.is_signature_valid(fleet_ca.issuing_certificate.public_key())  # type: ignore[arg-type]
    for revoked_serial in (serial, agent_serial):  # the register's and the agent's
        revoked = crl.get_revoked_certificate_by_serial_number(int(revoked_serial, 16))
        assert revoked is not None
        assert revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
            x509.ReasonFlags.cessation_of_operation
        )
    device = (await fleet.api.get(f"/api/devices/{device_id}")).json()
    assert device["decommissioned_at"] is not None
    certificates = (await fleet.api.get(f"/api/devices/{device_id}/certificates")).json()
    assert certificates[0]["reason"] == "cessationOfOperation"


async def test_a_decommissioned_device_cannot_renew(
    fleet: Fleet, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    identity = await _enrolled(fleet, tmp_path / "appliance", fleet_ca)
    device_id = identity.device_id()
    await fleet.api.post(f"/api/devices/{device_id}/decommission", json={})

    response = await fleet.api.post(
        f"/api/devices/{device_id}/renew",
        json={"csr_pem": identity.certificate_request().decode()},
        headers=signed(identity),
    )

    assert response.status_code == 401  # its certificates are revoked, it proves nothing now
    assert response.json()["reason"] == "device_decommissioned_refused"


async def test_decommissioning_twice_revokes_nothing_new(
    fleet: Fleet, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    identity = await _enrolled(fleet, tmp_path / "appliance", fleet_ca)
    path = f"/api/devices/{identity.device_id()}/decommission"
    first = (await fleet.api.post(path, json={})).json()

    second = (await fleet.api.post(path, json={})).json()

    assert second["revoked_serials"] == []
    assert second["decommissioned_at"] == first["decommissioned_at"]


@pytest.mark.parametrize("action", ["decommission", "replace"])
async def test_actions_on_an_unknown_device_answer_404(fleet: Fleet, action: str) -> None:
    body = {"decommission": {}, "replace": {"created_by": "ops"}}

    response = await fleet.api.post(f"/api/devices/no-such-device/{action}", json=body[action])

    assert response.status_code == 404
    assert response.json()["reason"] == "device_not_found"


async def test_the_ca_pem_is_the_pinned_root(fleet: Fleet, fleet_ca: CertificateAuthority) -> None:
    response = await fleet.api.get("/api/ca.pem")

    assert response.content == fleet_ca.root_pem
