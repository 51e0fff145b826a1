"""Devices prove themselves on every HTTPS call: the real control plane over HTTP, real keys.

The control plane is served by uvicorn on loopback with its fleet CA, on SQLite and on
PostgreSQL; appliances enrol with real enrolment codes (``edge.enrolment.first_boot``) and sign
their requests with ``edge.enrolment.device_auth``. Setup goes through the services (tenants,
catalog, decommission), so only the device routes are what is tested over HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from control_plane.catalog import service as catalog
from control_plane.catalog.schemas import CatalogItem
from control_plane.devices import service as registry
from control_plane.devices.device_auth import DeviceVerifier
from control_plane.operators.gatekeeper import Gatekeeper
from control_plane.provisioning import lifecycle
from control_plane.provisioning import service as provisioning
from edge.enrolment.device_auth import DeviceAuth
from edge.enrolment.errors import EnrolmentRejected
from edge.enrolment.first_boot import enrol_from_qr
from edge.enrolment.renewal import renew_certificate
from provisioning import device_assertion
from provisioning.ca import CertificateAuthority
from provisioning.device_keys import DeviceIdentity
from tests.control_plane.provisioning.fleet_harness import STORE, TENANT, Fleet, served_fleet
from tests.harness.control_plane import operator_settings
from tests.harness.services import Mosquitto

pytestmark = pytest.mark.services

OTHER_TENANT, OTHER_STORE = "globex", "globex-01"
ACME_ITEM = CatalogItem(id="acme-milk", name="Milk", price_minor=175, tax_class="B")
GLOBEX_ITEM = CatalogItem(id="globex-tea", name="Tea", price_minor=390, tax_class="B")


@pytest.fixture
async def fleet(
    database_url: str, mosquitto: Mosquitto, fleet_ca: CertificateAuthority, tmp_path: Path
) -> AsyncIterator[Fleet]:
    """The control plane with two tenants, each with a store and a one-item catalog."""
    async with served_fleet(
        database_url=database_url,
        ingest_broker_url=mosquitto.url,
        ca_directory=fleet_ca.directory,
        crl_file=tmp_path / "crl.pem",
    ) as running:
        engine = running.engine
        await registry.create_tenant(engine, tenant_id=OTHER_TENANT, name="Globex")
        await registry.create_store(
            engine, store_id=OTHER_STORE, tenant_id=OTHER_TENANT, name="Globex One"
        )
        await catalog.upsert_items(engine, tenant_id=TENANT, items=[ACME_ITEM])
        await catalog.upsert_items(engine, tenant_id=OTHER_TENANT, items=[GLOBEX_ITEM])
        yield running


async def enrolled(
    fleet: Fleet, directory: Path, *, tenant: str = TENANT, store: str = STORE
) -> DeviceAuth:
    """An appliance enrolled at ``store`` with a real code; its signing ``Auth``."""
    created = await provisioning.create_enrolment(
        engine=fleet.engine,
        authority=fleet.authority,
        tenant_id=tenant,
        store_id=store,
        created_by="test-operator",
    )
    await enrol_from_qr(created.qr_text, identity_dir=directory)
    return DeviceAuth(directory)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def minted(auth: DeviceAuth, *, seconds_ahead: float = 0, **change: Any) -> str:
    """An assertion of ``auth``'s device, minted now (+ ``seconds_ahead``), fields changed."""
    identity = auth.identity
    fields: dict[str, Any] = {
        "private_key": identity.ensure_key(),
        "certificate": identity.certificate(),
        "device_id": auth.device_id,
        "now": time.time() + seconds_ahead,
    } | change
    return device_assertion.mint(**fields)


async def snapshot(fleet: Fleet, headers: dict[str, str], **params: str) -> httpx.Response:
    """A register's call: its own assertion (``headers``) or none, never an operator's token."""
    async with fleet.anonymous() as register:
        return await register.get("/api/catalog/snapshot", headers=headers, params=params)


async def refusals(fleet: Fleet, reason: str) -> float:
    """``storefleet_device_auth_refusals_total{reason}`` as Prometheus reads it."""
    text = (await fleet.api.get("/metrics/")).text
    prefix = f'storefleet_device_auth_refusals_total{{reason="{reason}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def assert_refused(answer: httpx.Response, status: int, reason: str) -> None:
    assert (answer.status_code, answer.json()["reason"]) == (status, reason), answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    if status == 401:
        assert answer.headers["www-authenticate"].startswith('Bearer realm="storefleet-devices"')


async def test_a_device_syncs_its_own_stores_catalog(fleet: Fleet, tmp_path: Path) -> None:
    auth = await enrolled(fleet, tmp_path / "appliance")
    async with httpx.AsyncClient(base_url=fleet.url, auth=auth) as device:
        snap = await device.get("/api/catalog/snapshot")
        changes = await device.get("/api/catalog/changes", params={"since": 0})
        named = await device.get("/api/catalog/snapshot", params={"tenant_id": TENANT})

    assert snap.status_code == 200, snap.text
    assert [item["id"] for item in snap.json()["items"]] == [ACME_ITEM.id]
    assert [item["id"] for item in changes.json()["upserts"]] == [ACME_ITEM.id]
    assert named.json() == snap.json()


async def test_no_token_is_a_counted_401_problem(fleet: Fleet) -> None:
    before = await refusals(fleet, "missing")

    answer = await snapshot(fleet, {})

    assert_refused(answer, 401, "device_token_missing")
    assert answer.headers["www-authenticate"] == 'Bearer realm="storefleet-devices"'
    assert answer.json()["advice"]
    assert await refusals(fleet, "missing") == before + 1


async def test_a_flood_of_calls_that_prove_nothing_is_answered_429(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Refused calls spend the address's anonymous budget (here 3 a minute); a device's good
    calls from the same address spend nothing and still answer."""
    auth = await enrolled(fleet, tmp_path / "appliance")  # (its redemption spent the old budget)
    fleet.app.state.operators = Gatekeeper(
        engine=fleet.engine, settings=operator_settings(api_rate_per_minute=3)
    )

    refused = [await snapshot(fleet, {}) for _ in range(3)]
    flooded = await snapshot(fleet, {})
    async with httpx.AsyncClient(base_url=fleet.url, auth=auth) as device:
        good = await device.get("/api/catalog/snapshot")

    for answer in refused:
        assert_refused(answer, 401, "device_token_missing")
    assert_refused(flooded, 429, "rate_limited")
    assert 1 <= int(flooded.headers["Retry-After"]) <= 60
    assert good.status_code == 200, good.text


@pytest.mark.parametrize(
    ("change", "reason", "why"),
    [
        pytest.param({"seconds_ahead": -200}, "device_token_expired", "expired", id="expired"),
        pytest.param(
            {"seconds_ahead": 200}, "device_token_not_yet_valid", "not_yet_valid", id="future"
        ),
        pytest.param(
            {"audience": "https://elsewhere.example"},
            "device_token_invalid",
            "wrong_audience",
            id="wrong-audience",
        ),
        pytest.param(
            {"lifetime": 600}, "device_token_invalid", "lifetime_too_long", id="long-lived"
        ),
    ],
)
async def test_assertions_outside_their_time_or_audience_are_refused(
    fleet: Fleet, tmp_path: Path, change: dict[str, Any], reason: str, why: str
) -> None:
    auth = await enrolled(fleet, tmp_path / "appliance")
    before = await refusals(fleet, why)

    answer = await snapshot(fleet, bearer(minted(auth, **change)))

    assert_refused(answer, 401, reason)
    assert f'error_description="{why}"' in answer.headers["www-authenticate"]
    assert await refusals(fleet, why) == before + 1


async def test_another_devices_key_cannot_speak_for_a_device(fleet: Fleet, tmp_path: Path) -> None:
    victim = await enrolled(fleet, tmp_path / "victim")
    thief = await enrolled(fleet, tmp_path / "thief")
    thief_key = thief.identity.ensure_key()

    # the victim's certificate (public) with the thief's key: the signature is not the victim's
    borrowed = minted(victim, private_key=thief_key)
    # the thief's own certificate naming the victim as subject
    own_cert = minted(thief, device_id=victim.device_id)

    assert_refused(await snapshot(fleet, bearer(borrowed)), 401, "device_token_invalid")
    assert_refused(await snapshot(fleet, bearer(own_cert)), 401, "device_token_invalid")
    assert (await snapshot(fleet, bearer(minted(victim)))).status_code == 200


async def test_a_certificate_the_registry_does_not_know_is_refused(
    fleet: Fleet, tmp_path: Path
) -> None:
    auth = await enrolled(fleet, tmp_path / "appliance")
    rogue_ca = CertificateAuthority.create(tmp_path / "rogue-ca", passphrase=b"rogue passphrase")
    rogue = DeviceIdentity(tmp_path / "rogue")
    issued = rogue_ca.issue_device_certificate(
        rogue.certificate_request(), device_id=auth.device_id
    )
    rogue.install(issued.chain_pem, pinned_fingerprint=rogue_ca.fingerprint)

    answer = await snapshot(fleet, bearer(minted(DeviceAuth(rogue.directory))))

    assert_refused(answer, 401, "device_certificate_refused")


async def test_a_replayed_assertion_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    auth = await enrolled(fleet, tmp_path / "appliance")
    token = minted(auth)
    before = await refusals(fleet, "replayed")

    first = await snapshot(fleet, bearer(token))
    again = await snapshot(fleet, bearer(token))

    assert first.status_code == 200
    assert_refused(again, 401, "device_token_replayed")
    assert await refusals(fleet, "replayed") == before + 1


async def test_a_revoked_certificate_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    auth = await enrolled(fleet, tmp_path / "appliance")
    serial = auth.identity.certificate().serial_number
    await fleet.authority.revoke(
        [serial], reason=x509.ReasonFlags.key_compromise, now=provisioning.utc_now()
    )

    answer = await snapshot(fleet, bearer(minted(auth)))

    assert_refused(answer, 401, "device_certificate_refused")
    assert "revoked" in answer.json()["detail"]


class Monotonic:
    """The verifier's cache clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_revocation_reaches_a_device_seen_before_within_the_cache_time(
    fleet: Fleet, tmp_path: Path
) -> None:
    clock = Monotonic()
    verifier = DeviceVerifier(engine=fleet.engine, monotonic=clock)
    fleet.app.state.device_verifier = verifier
    auth = await enrolled(fleet, tmp_path / "appliance")
    seen = await snapshot(fleet, bearer(minted(auth)))  # its registry rows are kept now
    await fleet.authority.revoke(
        [auth.identity.certificate().serial_number],
        reason=x509.ReasonFlags.key_compromise,
        now=provisioning.utc_now(),
    )
    clock.now += verifier.registry_cache_seconds

    answer = await snapshot(fleet, bearer(minted(auth)))

    assert seen.status_code == 200
    assert_refused(answer, 401, "device_certificate_refused")


async def test_a_decommissioned_device_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    auth = await enrolled(fleet, tmp_path / "appliance")
    await lifecycle.decommission(
        engine=fleet.engine,
        authority=fleet.authority,
        device_id=auth.device_id,
        decommissioned_by="ops",
        now=provisioning.utc_now(),
    )

    snap = await snapshot(fleet, bearer(minted(auth)))
    with pytest.raises(EnrolmentRejected) as renewal:
        await renew_certificate(auth.identity.directory)

    assert_refused(snap, 401, "device_decommissioned_refused")
    assert renewal.value.status == 401
    assert renewal.value.reason == "device_decommissioned_refused"


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="no-tenant"),
        pytest.param({"tenant_id": OTHER_TENANT}, id="names-the-other"),
        pytest.param({"tenant_id": TENANT}, id="names-its-own"),
    ],
)
async def test_a_device_of_one_tenant_never_reads_anothers_catalog(
    fleet: Fleet, tmp_path: Path, params: dict[str, str]
) -> None:
    acme = await enrolled(fleet, tmp_path / "acme")
    globex = await enrolled(fleet, tmp_path / "globex", tenant=OTHER_TENANT, store=OTHER_STORE)

    async with httpx.AsyncClient(base_url=fleet.url, auth=acme) as device:
        snap = await device.get("/api/catalog/snapshot", params=params)
        changes = await device.get("/api/catalog/changes", params={"since": 0, **params})
    async with httpx.AsyncClient(base_url=fleet.url, auth=globex) as device:
        theirs = await device.get("/api/catalog/snapshot")

    read = [a.json() for a in (snap, changes) if a.status_code == 200]
    ids = {item["id"] for body in read for item in body.get("items", body.get("upserts", []))}
    assert GLOBEX_ITEM.id not in ids
    assert {snap.status_code, changes.status_code} <= {200, 404}
    assert [item["id"] for item in theirs.json()["items"]] == [GLOBEX_ITEM.id]


async def test_naming_another_tenant_answers_404(fleet: Fleet, tmp_path: Path) -> None:
    acme = await enrolled(fleet, tmp_path / "acme")

    answer = await snapshot(fleet, bearer(minted(acme)), tenant_id=OTHER_TENANT)

    assert_refused(answer, 404, "tenant_not_found")


async def test_an_out_of_range_version_from_a_device_is_a_422(fleet: Fleet, tmp_path: Path) -> None:
    auth = await enrolled(fleet, tmp_path / "appliance")

    answer = await fleet.api.get(
        "/api/catalog/changes", params={"since": 2**63}, headers=bearer(minted(auth))
    )

    assert_refused(answer, 422, "invalid_request")


async def test_renewal_hands_verification_to_the_new_certificate(
    fleet: Fleet, tmp_path: Path
) -> None:
    auth = await enrolled(fleet, tmp_path / "appliance")
    old = auth.identity.certificate()
    # certificates carry whole seconds: the renewed one must start in a later second to be newer
    await asyncio.sleep(1.1)

    renewed = await renew_certificate(auth.identity.directory)
    stale = await snapshot(fleet, bearer(minted(auth, certificate=old)))
    current = await snapshot(fleet, bearer(minted(auth)))

    assert renewed.leaf.serial_number != old.serial_number
    assert_refused(stale, 401, "device_certificate_refused")
    assert "renewed since" in stale.json()["detail"]
    assert current.status_code == 200


async def test_a_renewal_whose_answer_was_lost_can_be_asked_again(
    fleet: Fleet, tmp_path: Path
) -> None:
    auth = await enrolled(fleet, tmp_path / "appliance")
    old = auth.identity.certificate()
    csr = {"csr_pem": auth.identity.certificate_request().decode()}
    path = f"/api/devices/{auth.device_id}/renew"
    await asyncio.sleep(1.1)  # the first answer's certificate is newer than the installed one
    lost = await fleet.api.post(path, json=csr, headers=bearer(minted(auth)))

    again = await fleet.api.post(path, json=csr, headers=bearer(minted(auth, certificate=old)))
    catalog_call = await snapshot(fleet, bearer(minted(auth, certificate=old)))

    assert lost.status_code == 200, lost.text
    assert again.status_code == 200, again.text
    assert_refused(catalog_call, 401, "device_certificate_refused")  # superseded everywhere else


async def test_renewal_needs_the_devices_own_assertion(fleet: Fleet, tmp_path: Path) -> None:
    auth = await enrolled(fleet, tmp_path / "appliance")
    other = await enrolled(fleet, tmp_path / "other")
    path = f"/api/devices/{auth.device_id}/renew"
    csr = {"csr_pem": auth.identity.certificate_request().decode()}

    async with fleet.anonymous() as device:  # no operator token either: nothing at all
        unsigned = await device.post(path, json=csr)
    by_other = await fleet.api.post(path, json=csr, headers=bearer(minted(other)))

    assert_refused(unsigned, 401, "device_token_missing")
    assert_refused(by_other, 403, "device_not_yours")


async def test_replacement_hands_verification_to_the_new_device(
    fleet: Fleet, tmp_path: Path
) -> None:
    broken = await enrolled(fleet, tmp_path / "broken")
    created = await provisioning.replace(
        engine=fleet.engine,
        authority=fleet.authority,
        device_id=broken.device_id,
        created_by="ops",
    )
    await enrol_from_qr(created.qr_text, identity_dir=tmp_path / "new")
    successor = DeviceAuth(tmp_path / "new")

    new = await snapshot(fleet, bearer(minted(successor)))
    old = await snapshot(fleet, bearer(minted(broken)))

    assert successor.device_id != broken.device_id
    assert [item["id"] for item in new.json()["items"]] == [ACME_ITEM.id]
    assert_refused(old, 401, "device_decommissioned_refused")
