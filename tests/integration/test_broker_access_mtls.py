"""The control plane keeps the device broker's access list: enrol grants, decommission cuts.

The real control plane (uvicorn, SQL store, fleet CA) and a real Mosquitto on the mTLS listener
rendered from images/mosquitto with the dynamic-security plugin. Appliances enrol through the
API as first boot does (`enrol_from_qr`); every access-list change goes through the service,
over `$CONTROL/dynamic-security/v1`, as the control plane's own certificate.

A connection "closed at once" is read from the appliance's own session: its message iterator
raises as soon as the broker drops it (the 10 s timeout only guards against a hang). "Nothing
delivered" is proven with a sentinel, as in tests/provisioning/test_broker_mtls.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import update

from control_plane.app import create_app
from control_plane.devices.tables import devices
from control_plane.provisioning.broker_access import BrokerAccess, Outcome
from control_plane.provisioning.mqtt_identity import ensure_control_plane_identity
from control_plane.settings import ControlPlaneSettings
from edge.enrolment.first_boot import ReplicationIdentity, enrol_from_qr, replication_identity
from provisioning.ca import CertificateAuthority
from provisioning.dynamic_security import withdraw_commands
from tests.control_plane.provisioning.fleet_harness import Fleet, MtlsBroker, served_fleet
from tests.harness.services import Mosquitto, free_port, wait_until

pytestmark = pytest.mark.services

GRANTED_QOS_1 = 1
NOT_AUTHORIZED = 0x87


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the access list does not depend on the store (one query, on both back ends
    in the control plane's own tests)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}"


@pytest.fixture
async def fleet(
    database_url: str, mosquitto: Mosquitto, fleet_ca: CertificateAuthority, mtls_broker: MtlsBroker
) -> AsyncIterator[Fleet]:
    """The control plane, telling devices to use the mTLS broker (its own ingest idles on a
    plain one: the control plane's ingest over mTLS is test_control_plane_mtls.py's)."""
    async with served_fleet(
        database_url=database_url,
        ingest_broker_url=mosquitto.url,
        ca_directory=fleet_ca.directory,
        device_broker_url=mtls_broker.url,
        service_broker_url=mtls_broker.service_url,
        crl_file=mtls_broker.files.crlfile,
    ) as running:
        yield running


@pytest.fixture
def control_plane_tls(fleet_ca: CertificateAuthority, tmp_path: Path) -> ssl.SSLContext:
    """A control-plane session to watch the fleet's topics with."""
    return ensure_control_plane_identity(fleet_ca, tmp_path / "watcher")


async def _enrolled(
    fleet: Fleet, directory: Path, *, qr_text: str | None = None
) -> ReplicationIdentity:
    if qr_text is None:
        qr_text = (await fleet.create_enrolment())["qr_text"]
    await enrol_from_qr(qr_text, identity_dir=directory)
    return replication_identity(directory)


def _session(device: ReplicationIdentity) -> aiomqtt.Client:
    return aiomqtt.Client(
        device.broker.host,
        device.broker.port,
        identifier=device.device_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        tls_context=device.tls_context,
        timeout=10,
    )


def _watcher(broker: MtlsBroker, context: ssl.SSLContext) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1", broker.service_port, identifier="watcher", tls_context=context, timeout=10
    )


def _own(device: ReplicationIdentity, channel: str) -> str:
    return f"sf/v1/d/{device.device_id}/{channel}"


async def _next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(10):  # guards against a hang; no assertion depends on it
        return await anext(client.messages)


def _codes(granted: object) -> list[int]:
    assert isinstance(granted, list)
    return [code.value for code in granted if isinstance(code, ReasonCode)]


async def _subscribe_own(device: ReplicationIdentity) -> list[int]:
    """A fresh session's SUBACK for the device's own journal acks (the register's certificate)."""
    async with _session(device) as session:
        return _codes(await session.subscribe(_own(device, "journal/ack"), qos=1))


def _tls_refusal(broker: MtlsBroker, context: ssl.SSLContext) -> None:
    with (
        socket.create_connection(("127.0.0.1", broker.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.recv(1)


async def _broker_clients(access: BrokerAccess) -> set[str]:
    listing = await access.execute([{"command": "listClients", "count": -1, "offset": 0}])
    return set(listing[0].data["clients"])


async def test_an_enrolled_appliance_uses_its_subtree_and_nothing_else(
    fleet: Fleet, tmp_path: Path
) -> None:
    device = await _enrolled(fleet, tmp_path / "appliance")

    async with _session(device) as session:
        own = await session.subscribe(_own(device, "journal/ack"), qos=1)
        everything = await session.subscribe("#", qos=1)

    assert _codes(own) == [GRANTED_QOS_1]
    assert _codes(everything) == [NOT_AUTHORIZED]


async def test_decommission_closes_the_open_connection_and_leaves_a_reconnect_nothing(
    fleet: Fleet, mtls_broker: MtlsBroker, control_plane_tls: ssl.SSLContext, tmp_path: Path
) -> None:
    retired = await _enrolled(fleet, tmp_path / "retired")
    kept = await _enrolled(fleet, tmp_path / "kept")
    async with _session(retired) as session:
        await session.subscribe(_own(retired, "journal/ack"), qos=1)
        response = await fleet.api.post(
            f"/api/devices/{retired.device_id}/decommission", json={"decommissioned_by": "ops"}
        )
        assert response.status_code == 200, response.text
        with pytest.raises(aiomqtt.MqttError):
            await _next_message(session)  # the broker closed it at once

    async with (
        _watcher(mtls_broker, control_plane_tls) as watcher,
        _session(retired) as reconnected,  # its certificate still passes TLS until the reload
        _session(kept) as appliance,
    ):
        await watcher.subscribe("sf/v1/d/+/journal", qos=1)
        refused = await reconnected.subscribe(_own(retired, "journal/ack"), qos=1)
        await reconnected.publish(_own(retired, "journal"), b"after decommission", qos=1)
        await appliance.publish(_own(kept, "journal"), b"sentinel", qos=1)
        first = await _next_message(watcher)

    assert _codes(refused) == [NOT_AUTHORIZED]
    assert (first.topic.value, first.payload) == (_own(kept, "journal"), b"sentinel")
    mtls_broker.reload()  # what the operator (or a path unit) does after the CRL is rewritten
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REVOKED"):
        _tls_refusal(mtls_broker, retired.tls_context)


async def test_a_replacement_cuts_the_old_appliance_and_grants_the_new(
    fleet: Fleet, tmp_path: Path
) -> None:
    old = await _enrolled(fleet, tmp_path / "old")
    async with _session(old) as session:
        await session.subscribe(_own(old, "journal/ack"), qos=1)
        response = await fleet.api.post(
            f"/api/devices/{old.device_id}/replace", json={"created_by": "ops"}
        )
        assert response.status_code == 201, response.text
        new = await _enrolled(fleet, tmp_path / "new", qr_text=response.json()["qr_text"])
        with pytest.raises(aiomqtt.MqttError):
            await _next_message(session)

    assert await _subscribe_own(new) == [GRANTED_QOS_1]
    assert await _subscribe_own(old) == [NOT_AUTHORIZED]


async def test_reconcile_grants_what_the_broker_lost_and_withdraws_what_it_kept(
    fleet: Fleet, tmp_path: Path
) -> None:
    access = fleet.authority.broker_access
    lost = await _enrolled(fleet, tmp_path / "lost")
    kept = await _enrolled(fleet, tmp_path / "kept")
    # A broker restored from an old file forgot `lost`; a control plane that died between its
    # commit and its command left `kept` granted after its decommission.
    await access.execute(withdraw_commands(lost.device_id))
    async with fleet.engine.begin() as conn:
        await conn.execute(
            update(devices).where(devices.c.id == kept.device_id).values(decommissioned_at=1)
        )
    async with _session(lost) as early, _session(kept) as stale:
        early_codes = _codes(await early.subscribe(_own(lost, "journal/ack"), qos=1))
        await stale.subscribe(_own(kept, "journal/ack"), qos=1)

        reconciled = await access.reconcile(engine=fleet.engine)

        for closed in (early, stale):  # each must reconnect: subscribe again, or not at all
            with pytest.raises(aiomqtt.MqttError):
                await _next_message(closed)

    assert early_codes == [NOT_AUTHORIZED]
    assert lost.device_id in reconciled.granted
    assert kept.device_id in reconciled.withdrawn
    assert await _subscribe_own(lost) == [GRANTED_QOS_1]
    assert await _subscribe_own(kept) == [NOT_AUTHORIZED]
    assert (await access.reconcile(engine=fleet.engine)).granted == ()  # in step now


async def test_the_control_plane_reconciles_when_it_starts(
    fleet: Fleet, database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    access = fleet.authority.broker_access
    device = await _enrolled(fleet, tmp_path / "appliance")
    await access.execute(withdraw_commands(device.device_id))
    assert device.device_id not in await _broker_clients(access)

    app = create_app(ControlPlaneSettings(database_url=database_url, broker_url=mosquitto.url))
    app.state.provisioning_settings = fleet.authority.settings
    async with app.router.lifespan_context(app):  # a second instance starting on the registry

        async def granted() -> bool:
            return device.device_id in await _broker_clients(access)

        await wait_until(granted, timeout=30, what="the start-up reconcile")

    assert await _subscribe_own(device) == [GRANTED_QOS_1]


async def test_enrolment_carries_on_when_the_broker_cannot_be_reached(
    database_url: str,
    mosquitto: Mosquitto,
    fleet_ca: CertificateAuthority,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with served_fleet(
        database_url=database_url,
        ingest_broker_url=mosquitto.url,
        ca_directory=fleet_ca.directory,
        device_broker_url=f"mqtts://127.0.0.1:{free_port()}",  # nobody listens
    ) as fleet:
        before = await _failed_grants(fleet)
        with caplog.at_level(logging.WARNING, logger="control_plane.provisioning.broker_access"):
            device = await _enrolled(fleet, tmp_path / "appliance")
        after = await _failed_grants(fleet)

    assert device.device_id
    assert after == before + 1
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("broker_access")]
    assert len(lines) == 1
    assert f"grant of {device.device_id} failed" in lines[0]
    assert "reconcile retries it" in lines[0]


async def _failed_grants(fleet: Fleet) -> float:
    text = (await fleet.api.get("/metrics/")).text
    prefix = 'storefleet_broker_access_total{action="grant",outcome="failed"} '
    found = [line.removeprefix(prefix) for line in text.splitlines() if line.startswith(prefix)]
    return float(found[0]) if found else 0.0


async def test_a_device_broker_without_mtls_has_no_access_list(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asked: list[str] = []

    async def tls_context() -> Any:
        asked.append("tls")
        raise AssertionError("a plain broker needs no identity")

    access = BrokerAccess(broker_url="mqtt://127.0.0.1:1883", tls_context=tls_context)
    with caplog.at_level(logging.INFO, logger="control_plane.provisioning.broker_access"):
        outcomes = [await access.grant("reg-1"), await access.withdraw("reg-1")]

    assert outcomes == [Outcome.SKIPPED, Outcome.SKIPPED]
    assert asked == []
    assert len(caplog.records) == 2  # one line per call, saying why
    assert "has no mTLS" in caplog.records[0].getMessage()
