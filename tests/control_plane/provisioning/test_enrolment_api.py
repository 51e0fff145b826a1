"""The enrolment API on both SQL stores: create, QR, redeem with a CSR, refusals, reprint."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from control_plane.provisioning import service
from provisioning.ca import CertificateAuthority
from provisioning.device_keys import DeviceIdentity
from provisioning.enrolment import parse_qr
from tests.control_plane.provisioning.fleet_harness import STORE, TENANT, Fleet
from tests.harness.scan import read_qr_codes

pytestmark = pytest.mark.services


def _tampered(csr_pem: bytes) -> bytes:
    """The same CSR with one byte of its subject changed: parseable, signature broken."""
    der = x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER)
    forged = der.replace(b"storefleet-appliance", b"storefleet-applianCe")
    assert forged != der
    return x509.load_der_x509_csr(forged).public_bytes(serialization.Encoding.PEM)


def _weak_csr() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _token(created: dict[str, Any]) -> str:
    """The token inside the QR text, as an appliance's parse_qr would find it."""
    return parse_qr(created["qr_text"]).token


async def test_token_and_csr_become_a_registered_device_with_a_pinned_chain(
    fleet: Fleet, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    created = await fleet.create_enrolment(register_name="till 1")
    token = _token(created)
    identity = DeviceIdentity(tmp_path / "appliance")

    response = await fleet.api.post(
        "/api/enrol", json={"token": token, "csr_pem": identity.certificate_request().decode()}
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    verified = identity.install(
        answer["certificate_chain_pem"].encode(), pinned_fingerprint=fleet_ca.fingerprint
    )
    assert verified.device_id == answer["device_id"]
    assert answer["device_id"].startswith(f"{STORE}-")
    assert answer["ca_fingerprint"] == fleet_ca.fingerprint
    assert answer["config"] == {
        "config_version": 0,
        "device_id": answer["device_id"],
        "tenant_id": TENANT,
        "store_id": STORE,
        "register_name": "till 1",
        "store_name": "High Street",
        "timezone": "UTC",
        "currency": "EUR",
    }
    device = (await fleet.api.get(f"/api/devices/{answer['device_id']}")).json()
    assert (device["store_id"], device["register_name"]) == (STORE, "till 1")
    enrolment = await fleet.enrolment(created["enrolment"]["id"])
    assert (enrolment["state"], enrolment["device_id"]) == ("used", answer["device_id"])
    agent = identity.install_agent(
        answer["agent_certificate_chain_pem"].encode(),
        device_id=answer["device_id"],
        pinned_fingerprint=fleet_ca.fingerprint,
    )
    assert agent.device_id == f"{answer['device_id']}.agent"  # the agent's session, same key
    assert agent.leaf.public_key() == verified.leaf.public_key()
    certificates = (await fleet.api.get(f"/api/devices/{answer['device_id']}/certificates")).json()
    assert {(c["kind"], c["serial"]) for c in certificates} == {
        ("device", format(verified.leaf.serial_number, "x")),
        ("agent", format(agent.leaf.serial_number, "x")),
    }


async def test_the_typed_code_enrols_like_the_token(fleet: Fleet, tmp_path: Path) -> None:
    created = await fleet.create_enrolment()
    typed = created["fallback_code"].lower().replace("-", " ")  # as a tech might type it
    csr = DeviceIdentity(tmp_path / "appliance").certificate_request().decode()

    response = await fleet.api.post("/api/enrol", json={"fallback_code": typed, "csr_pem": csr})

    assert response.status_code == 200, response.text


async def test_the_same_key_asking_again_gets_the_same_device(fleet: Fleet, tmp_path: Path) -> None:
    created = await fleet.create_enrolment()
    token = _token(created)
    body = {
        "token": token,
        "csr_pem": DeviceIdentity(tmp_path / "a").certificate_request().decode(),
    }

    first = await fleet.api.post("/api/enrol", json=body)
    again = await fleet.api.post("/api/enrol", json=body)  # the first answer was lost

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["device_id"] == again.json()["device_id"]
    devices = (await fleet.api.get("/api/devices", params={"store_id": STORE})).json()
    assert [d["id"] for d in devices] == [first.json()["device_id"]]


async def test_the_qr_png_decodes_to_the_enrolment_and_the_sheet_is_a_pdf(fleet: Fleet) -> None:
    created = await fleet.create_enrolment()

    png = await fleet.api.get(created["qr_png_url"])
    pdf = await fleet.api.get(created["sheet_pdf_url"])

    assert (png.headers["content-type"], pdf.headers["content-type"]) == (
        "image/png",
        "application/pdf",
    )
    assert read_qr_codes(png.content) == [created["qr_text"]]
    assert pdf.content.startswith(b"%PDF")


async def test_a_used_enrolment_no_longer_shows_its_qr(fleet: Fleet, tmp_path: Path) -> None:
    created = await fleet.create_enrolment()
    token = _token(created)
    csr = DeviceIdentity(tmp_path / "appliance").certificate_request().decode()
    assert (await fleet.api.post("/api/enrol", json={"token": token, "csr_pem": csr})).is_success

    response = await fleet.api.get(created["qr_png_url"])

    assert response.status_code == 410
    assert response.json()["reason"] == "enrolment_not_pending"


async def test_a_reused_token_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    created = await fleet.create_enrolment()
    first = DeviceIdentity(tmp_path / "first").certificate_request().decode()
    second = DeviceIdentity(tmp_path / "second").certificate_request().decode()
    token = _token(created)
    assert (await fleet.api.post("/api/enrol", json={"token": token, "csr_pem": first})).is_success
    before = await fleet.refusals("token_used")

    response = await fleet.api.post("/api/enrol", json={"token": token, "csr_pem": second})

    assert response.status_code == 409
    assert response.json()["reason"] == "token_used"
    assert "ask an operator" in response.json()["advice"]
    assert await fleet.refusals("token_used") == before + 1


async def test_two_appliances_racing_for_one_token_get_one_identity(
    fleet: Fleet, tmp_path: Path
) -> None:
    created = await fleet.create_enrolment()
    bodies = [
        {
            "token": _token(created),
            "csr_pem": DeviceIdentity(tmp_path / name).certificate_request().decode(),
        }
        for name in ("first", "second")
    ]

    answers = await asyncio.gather(*(fleet.api.post("/api/enrol", json=b) for b in bodies))

    assert sorted(a.status_code for a in answers) == [200, 409]
    devices = (await fleet.api.get("/api/devices", params={"store_id": STORE})).json()
    assert len(devices) == 1
    [winner] = [a.json()["device_id"] for a in answers if a.status_code == 200]
    certificates = (await fleet.api.get(f"/api/devices/{winner}/certificates")).json()
    assert len(certificates) == 2  # the winner's two; the loser's were never recorded


async def test_an_expired_token_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    created = await service.create_enrolment(
        engine=fleet.engine,
        authority=fleet.authority,
        tenant_id=TENANT,
        store_id=STORE,
        created_by="test",
        ttl=timedelta(hours=1),
        now=service.utc_now() - timedelta(hours=2),
    )
    csr = DeviceIdentity(tmp_path / "appliance").certificate_request().decode()

    response = await fleet.api.post(
        "/api/enrol", json={"token": created.payload.token, "csr_pem": csr}
    )

    assert response.status_code == 410
    assert response.json()["reason"] == "token_expired"
    assert (await fleet.enrolment(created.view.id))["state"] == "expired"


async def test_a_revoked_token_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    created = await fleet.create_enrolment()
    revoked = await fleet.api.post(
        f"/api/enrolments/{created['enrolment']['id']}/revoke", json={"revoked_by": "ops"}
    )
    assert revoked.json()["state"] == "revoked"
    csr = DeviceIdentity(tmp_path / "appliance").certificate_request().decode()

    response = await fleet.api.post("/api/enrol", json={"token": _token(created), "csr_pem": csr})

    assert response.status_code == 410
    assert response.json()["reason"] == "token_revoked"


@pytest.mark.parametrize(
    ("make_csr", "reason"),
    [
        pytest.param(_tampered, "bad_csr", id="tampered"),
        pytest.param(lambda pem: b"-----BEGIN CERTIFICATE REQUEST-----\n", "bad_csr", id="junk"),
        pytest.param(lambda pem: _weak_csr(), "weak_key", id="rsa-1024"),
    ],
)
async def test_a_bad_csr_is_refused_and_the_token_stays_usable(
    fleet: Fleet, tmp_path: Path, make_csr: Callable[[bytes], bytes], reason: str
) -> None:
    created = await fleet.create_enrolment()
    good = DeviceIdentity(tmp_path / "appliance").certificate_request()
    bad = make_csr(good)

    response = await fleet.api.post(
        "/api/enrol", json={"token": _token(created), "csr_pem": bad.decode()}
    )

    assert response.status_code == 400
    assert response.json()["reason"] == reason
    assert (await fleet.enrolment(created["enrolment"]["id"]))["state"] == "pending"


@pytest.mark.parametrize(
    ("secret", "status", "reason"),
    [
        pytest.param({"token": "sfe_" + "A" * 32}, 404, "token_unknown", id="unknown-token"),
        pytest.param({"token": "not-a-token"}, 400, "malformed_token", id="malformed-token"),
        pytest.param({"fallback_code": "0000-0000-0001"}, 400, "malformed_token", id="bad-check"),
    ],
)
async def test_an_unknown_or_malformed_secret_is_refused(
    fleet: Fleet, tmp_path: Path, secret: dict[str, str], status: int, reason: str
) -> None:
    csr = DeviceIdentity(tmp_path / "appliance").certificate_request().decode()

    response = await fleet.api.post("/api/enrol", json={**secret, "csr_pem": csr})

    assert response.status_code == status
    assert response.json()["reason"] == reason


async def test_an_enrolment_for_a_store_that_does_not_exist_is_refused(fleet: Fleet) -> None:
    response = await fleet.api.post(
        "/api/enrolments",
        json={"tenant_id": TENANT, "store_id": "nowhere", "created_by": "ops"},
    )

    assert response.status_code == 404
    assert response.json()["reason"] == "store_not_found"


@pytest.mark.parametrize("state", ["pending", "used", "revoked", "expired"])
async def test_enrolments_are_listed_by_state(fleet: Fleet, tmp_path: Path, state: str) -> None:
    ids = {"pending": (await fleet.create_enrolment())["enrolment"]["id"]}
    used = await fleet.create_enrolment()
    csr = DeviceIdentity(tmp_path / "appliance").certificate_request().decode()
    await fleet.api.post("/api/enrol", json={"token": _token(used), "csr_pem": csr})
    ids["used"] = used["enrolment"]["id"]
    revoked = await fleet.create_enrolment()
    await fleet.api.post(f"/api/enrolments/{revoked['enrolment']['id']}/revoke", json={})
    ids["revoked"] = revoked["enrolment"]["id"]
    expired = await service.create_enrolment(
        engine=fleet.engine,
        authority=fleet.authority,
        tenant_id=TENANT,
        store_id=STORE,
        created_by="test",
        ttl=timedelta(minutes=5),
        now=service.utc_now() - timedelta(hours=1),
    )
    ids["expired"] = expired.view.id

    listed = (await fleet.api.get("/api/enrolments", params={"state": state})).json()

    assert [(e["id"], e["state"]) for e in listed] == [(ids[state], state)]
