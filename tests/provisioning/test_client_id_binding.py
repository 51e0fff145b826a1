"""Client ids bound to certificates (`bind_client_id`) on a real Mosquitto 2.0.11.

Mosquitto hands a connection's client id to whoever asks for it and closes the holder's session,
whatever certificate either presents; the dynamic-security plugin's `clientid` is checked only
with a password, never for a certificate client. The one binding 2.0.11 has is
`use_username_as_clientid`: the broker replaces every client id with the certificate's CN.
Proven here with the plugin's access list in place, on a broker rendered with the flag:
- a takeover is refused: the attacker gets a session of its own name, the victim keeps its own;
- and why the shipped config leaves it off: one certificate then holds one session, so an
  appliance's replicator (`<id>`) and fleet agent (`<id>-agent`) would knock each other off.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from control_plane.provisioning.broker_access import BrokerAccess, Outcome
from provisioning.broker_config import write_broker_directory
from provisioning.ca import CertificateAuthority
from provisioning.device_keys import DeviceIdentity
from provisioning.keys import build_csr, generate_private_key, private_key_pem
from tests.control_plane.provisioning.fleet_harness import BrokerProcess
from tests.harness.services import free_port

pytestmark = pytest.mark.services

HOST = "127.0.0.1"
NOT_AUTHORIZED = 0x87
Enrol = Callable[[str], Awaitable[DeviceIdentity]]


@pytest.fixture(scope="module")
def fleet_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    directory = tmp_path_factory.mktemp("fleet") / "ca"
    return CertificateAuthority.create(directory, passphrase=b"module passphrase, long enough")


@pytest.fixture(scope="module")
def broker(
    fleet_ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerProcess]:
    directory = tmp_path_factory.mktemp("bound-broker")
    port = free_port()
    files = write_broker_directory(
        directory,
        ca=fleet_ca,
        hostnames=["localhost", HOST],
        port=port,
        bind_address=HOST,
        run_as_user="root" if os.geteuid() == 0 else None,
        bind_client_id=True,
    )
    running = BrokerProcess(files, port, directory / "mosquitto.log")
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def control_plane(
    fleet_ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> ssl.SSLContext:
    directory = tmp_path_factory.mktemp("control-plane")
    key = generate_private_key()
    issued = fleet_ca.issue_control_plane_certificate(build_csr(key, common_name="cp"))
    (directory / "cp.key.pem").write_bytes(private_key_pem(key, passphrase=None))
    (directory / "cp.crt.pem").write_bytes(issued.certificate_pem)
    context = ssl.create_default_context(cadata=fleet_ca.root_pem.decode())
    context.load_cert_chain(directory / "cp.crt.pem", directory / "cp.key.pem")
    return context


@pytest.fixture
def enrol(
    fleet_ca: CertificateAuthority,
    broker: BrokerProcess,
    control_plane: ssl.SSLContext,
    tmp_path: Path,
) -> Enrol:
    """A device with its certificate, granted its subtree through the real BrokerAccess."""

    async def tls_context() -> ssl.SSLContext:
        return control_plane

    access = BrokerAccess(broker_url=broker.url, tls_context=tls_context)

    async def enrol_device(name: str) -> DeviceIdentity:
        device_id = f"{name}-{uuid.uuid4().hex[:6]}"
        identity = DeviceIdentity(tmp_path / device_id)
        issued = fleet_ca.issue_device_certificate(
            identity.certificate_request(), device_id=device_id
        )
        identity.install(issued.chain_pem, pinned_fingerprint=fleet_ca.fingerprint)
        assert await access.grant(device_id) == Outcome.APPLIED
        return identity

    return enrol_device


def _connect(broker: BrokerProcess, identity: DeviceIdentity, client_id: str) -> aiomqtt.Client:
    context = ssl.create_default_context(cafile=identity.ca_path)
    context.load_cert_chain(identity.certificate_path, identity.key_path)
    return aiomqtt.Client(
        HOST,
        broker.port,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        tls_context=context,
        timeout=10,
    )


async def _next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(10):  # guards against a hang; no assertion depends on it
        return await anext(client.messages)


def _codes(granted: object) -> list[int]:
    assert isinstance(granted, list)
    return [code.value for code in granted if isinstance(code, ReasonCode)]


async def test_another_certificate_cannot_take_over_a_devices_client_id(
    broker: BrokerProcess, enrol: Enrol, control_plane: ssl.SSLContext
) -> None:
    victim, attacker = await enrol("reg-victim"), await enrol("reg-attacker")
    victim_id = victim.device_id()
    own = f"sf/v1/d/{victim_id}/cmd"
    cp = aiomqtt.Client(HOST, broker.port, identifier=f"cp-{uuid.uuid4().hex[:8]}",
                        tls_context=control_plane, timeout=10)  # fmt: skip
    async with cp, _connect(broker, victim, victim_id) as appliance:
        await appliance.subscribe(own, qos=1)
        async with _connect(broker, attacker, victim_id) as impostor:
            stolen = await impostor.subscribe(own, qos=1)
            await cp.publish(own, b"still yours", qos=1)
            received = await _next_message(appliance)  # raises if its session was closed

    assert received.payload == b"still yours"
    assert _codes(stolen) == [NOT_AUTHORIZED]  # and its session is its own, not the victim's
    log = broker.log.read_text()
    assert f"Client {victim_id} already connected, closing old connection." not in log


async def test_one_certificate_holds_one_session_when_bound(
    broker: BrokerProcess, enrol: Enrol, control_plane: ssl.SSLContext
) -> None:
    """Why `bind_client_id` is off in the shipped config: the appliance's two sessions collide."""
    device = await enrol("reg-two-sessions")
    device_id = device.device_id()
    async with _connect(broker, device, device_id) as replicator:
        await replicator.subscribe(f"sf/v1/d/{device_id}/journal/ack", qos=1)
        async with _connect(broker, device, f"{device_id}-agent"):
            with pytest.raises(aiomqtt.MqttError):
                await _next_message(replicator)  # closed: the agent took its client id
