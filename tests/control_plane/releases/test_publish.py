"""Publishing releases and downloading bundles, on the served control plane (SQLite and
PostgreSQL): only bundles signed by a trusted key whose every file matches are kept; a version
never changes; only platform admins publish; a device downloads with its own assertion, resuming
with ``Range`` against the bundle's sha256 as its ``ETag``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from control_plane.devices import service as registry
from control_plane.operators.principal import Role
from control_plane.operators.tables import audit_log
from edge.enrolment.device_auth import DeviceAuth
from protocols.release_bundle import public_key_text
from provisioning.ca import CertificateAuthority
from tests.control_plane.devices.device_harness import issued_identity
from tests.control_plane.rollouts.fleet import make_bundle
from tests.harness.control_plane import ServedControlPlane, served_control_plane
from tests.harness.services import Mosquitto

pytestmark = pytest.mark.services

OLD_KEY, NEW_KEY, STRANGER = (Ed25519PrivateKey.generate() for _ in range(3))


@pytest.fixture
async def cp(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> AsyncIterator[ServedControlPlane]:
    """A control plane trusting two keys at once (a rotation under way)."""
    keys = ",".join(public_key_text(k.public_key()) for k in (OLD_KEY, NEW_KEY))
    async with served_control_plane(
        database_url=database_url,
        broker_url=mosquitto.url,
        release_keys=keys,
        release_dir=tmp_path / "releases",
    ) as served:
        engine = served.app.state.engine
        await registry.create_tenant(engine, tenant_id="acme", name="Acme")
        await registry.create_tenant(engine, tenant_id="other", name="Other")
        await registry.create_store(engine, store_id="acme-01", tenant_id="acme", name="High St")
        await registry.register_device(engine, device_id="acme-01-r1", store_id="acme-01")
        yield served


def _tampered_signature(bundle: bytes) -> bytes:
    """The bundle with one character of the signature changed (same length, still base64url)."""
    at = bundle.index(b'"signature":"') + len(b'"signature":"') + 5
    changed = b"A" if bundle[at : at + 1] != b"A" else b"B"
    return bundle[:at] + changed + bundle[at + 1 :]


async def test_trusted_bundles_are_kept_and_the_refused_say_why(cp: ServedControlPlane) -> None:
    async with cp.client() as admin:
        first = await admin.post("/api/releases", content=make_bundle("1.0.0", OLD_KEY))
        rotated = await admin.post("/api/releases", content=make_bundle("1.1.0", NEW_KEY))
        again = await admin.post("/api/releases", content=make_bundle("1.0.0", OLD_KEY))
        other_bytes = await admin.post(
            "/api/releases", content=make_bundle("1.0.0", OLD_KEY, wheel=b"other wheel")
        )
        unknown = await admin.post("/api/releases", content=make_bundle("2.0.0", STRANGER))
        bad_sig = await admin.post(
            "/api/releases", content=_tampered_signature(make_bundle("2.0.1", OLD_KEY))
        )
        tampered = await admin.post(
            "/api/releases", content=make_bundle("2.0.2", OLD_KEY, tamper=True)
        )
        not_a_bundle = await admin.post("/api/releases", content=b"not a tar at all" * 64)
        listed = (await admin.get("/api/releases")).json()
    assert (first.status_code, rotated.status_code, again.status_code) == (201, 201, 200)
    bundle = make_bundle("1.0.0", OLD_KEY)
    assert first.json()["sha256"] == hashlib.sha256(bundle).hexdigest()
    assert first.json()["size"] == len(bundle)
    assert rotated.json()["key_id"] != first.json()["key_id"]
    assert (other_bytes.status_code, other_bytes.json()["reason"]) == (409, "release_exists")
    for refused, why in (
        (unknown, "unknown_key"),
        (bad_sig, "bad_signature"),
        (tampered, "sha256_mismatch"),
        (not_a_bundle, "malformed"),
    ):
        assert refused.status_code == 422, refused.text
        assert refused.json()["reason"] == "bundle_refused"
        assert refused.json()["detail"].startswith(f"{why}:")
    assert sorted(r["version"] for r in listed) == ["1.0.0", "1.1.0"]
    async with cp.app.state.engine.connect() as conn:
        audited = (
            await conn.execute(
                select(audit_log.c.outcome, audit_log.c.reason).where(
                    audit_log.c.action == "releases:publish"
                )
            )
        ).all()
    assert sorted(audited).count(("ok", "")) >= 2  # each new release (and maybe the retry)
    refusals = {reason for outcome, reason in audited if outcome == "refused"}
    assert {
        "bundle_unknown_key",
        "bundle_bad_signature",
        "bundle_sha256_mismatch",
        "bundle_malformed",
    } <= refusals
    kept = os.listdir(cp.app.state.settings.release_dir)
    assert sorted(kept) == sorted(f"{r['sha256']}.sfb" for r in listed)  # no upload left over


async def test_only_platform_admins_publish(cp: ServedControlPlane) -> None:
    bundle = make_bundle("1.0.0", OLD_KEY)
    for role in (Role.TENANT_ADMIN, Role.OPERATOR, Role.VIEWER):
        session = await cp.log_in(f"{role.value}@acme.test", role, tenant_id="acme")
        async with cp.anonymous() as client:
            client.cookies.set("sf_session", session.secret)
            refused = await client.post(
                "/api/releases", content=bundle, headers={"X-CSRF-Token": session.csrf}
            )
            seen = await client.get("/api/releases")
        assert (refused.status_code, refused.json()["reason"]) == (403, "forbidden"), role
        assert seen.status_code == 200
    async with cp.anonymous() as nobody:
        assert (await nobody.post("/api/releases", content=bundle)).status_code == 401


async def test_a_device_downloads_its_bundle_with_ranges(
    cp: ServedControlPlane, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    bundle = make_bundle("1.0.0", OLD_KEY, wheel=bytes(range(256)) * 40)
    async with cp.client() as admin:
        assert (await admin.post("/api/releases", content=bundle)).status_code == 201
    await issued_identity(
        cp.app.state.engine, fleet_ca, device_id="acme-01-r1", identity_dir=tmp_path / "r1"
    )
    url = "/api/devices/acme-01-r1/releases/1.0.0/bundle"
    async with cp.anonymous(auth=DeviceAuth(tmp_path / "r1")) as device, cp.client() as admin:
        whole = await device.get(url)
        first = await device.get(url, headers={"Range": "bytes=0-999"})
        rest = await device.get(url, headers={"Range": "bytes=1000-"})
        past = await device.get(url, headers={"Range": f"bytes={len(bundle) + 10}-"})
        missing = await device.get("/api/devices/acme-01-r1/releases/9.9.9/bundle")
        other_device = await device.get("/api/devices/acme-01-r2/releases/1.0.0/bundle")
        operator = await admin.get(url)
    digest = hashlib.sha256(bundle).hexdigest()
    assert whole.status_code == 200
    assert whole.content == bundle
    assert whole.headers["etag"] == f'"{digest}"'
    assert first.status_code == 206
    assert first.headers["content-range"] == f"bytes 0-999/{len(bundle)}"
    assert rest.status_code == 206
    assert first.content + rest.content == bundle
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(bundle)}"
    assert (missing.status_code, missing.json()["reason"]) == (404, "release_not_found")
    assert other_device.status_code == 403
    assert operator.status_code == 401  # an operator's token is no device's assertion
