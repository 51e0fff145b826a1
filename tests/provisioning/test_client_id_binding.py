"""Client ids bound to certificates (`bind_client_id`) on a real Mosquitto 2.0.11.

Mosquitto hands a connection's client id to whoever asks for it and closes the holder's session,
whatever certificate either presents; the dynamic-security plugin's `clientid` is checked only
with a password, never for a certificate client. The one binding 2.0.11 has is
`use_username_as_clientid`: the broker replaces every client id with the certificate's CN.
Proven here with the plugin's access list in place, on a broker rendered with the flag:
- a takeover is refused: the attacker gets a session of its own name, the victim keeps its own;
- an appliance's two sessions coexist: the register's (certificate CN `<id>`) and the fleet
  agent's (CN `<id>.agent`, the same key), each with a client id of its own;
- each certificate gets exactly its own process's channels of its own device: the agent's
  certificate cannot publish the journal, the register's cannot speak for the agent (state,
  command results) nor take commands, and no agent touches another device's topics;
- why the control plane connects to the service listener (`service_port`, not bound, never
  reachable by appliances): all its sessions present the one CN `control-plane`, so on the bound
  listener they knock each other off, and on the service listener they coexist.

"Nothing delivered" is proven without waiting, as in test_broker_mtls.py: after the refused
message the same client sends an allowed sentinel, which must be the first thing delivered.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from control_plane.provisioning.broker_access import BrokerAccess, Outcome
from protocols.topics import agent_client_id
from provisioning.ca import CertificateAuthority, validate_csr
from provisioning.device_keys import DeviceIdentity
from provisioning.keys import build_csr, generate_private_key, private_key_pem
from tests.control_plane.provisioning.fleet_harness import MtlsBroker

pytestmark = pytest.mark.services

HOST = "127.0.0.1"
GRANTED_QOS_1 = 1
NOT_AUTHORIZED = 0x87


@dataclass(frozen=True)
class Appliance:
    """One enrolled appliance: its identity directory holds both certificates."""

    identity: DeviceIdentity

    @property
    def device_id(self) -> str:
        return self.identity.device_id()

    def topic(self, channel: str) -> str:
        return f"sf/v1/d/{self.device_id}/{channel}"

    def context(self, *, agent: bool) -> ssl.SSLContext:
        identity = self.identity
        context = ssl.create_default_context(cafile=identity.ca_path)
        certificate = identity.agent_certificate_path if agent else identity.certificate_path
        context.load_cert_chain(certificate, identity.key_path)
        return context


Enrol = Callable[[str], Awaitable[Appliance]]


@pytest.fixture(scope="module")
def fleet_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    directory = tmp_path_factory.mktemp("fleet") / "ca"
    return CertificateAuthority.create(directory, passphrase=b"module passphrase, long enough")


@pytest.fixture(scope="module")
def broker(
    fleet_ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MtlsBroker]:
    """The broker as shipped: client ids bound on the appliances' listener, a service listener
    for the control plane."""
    running = MtlsBroker(tmp_path_factory.mktemp("bound-broker"), ca=fleet_ca)
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
    broker: MtlsBroker,
    control_plane: ssl.SSLContext,
    tmp_path: Path,
) -> Enrol:
    """An appliance with both certificates, granted through the real BrokerAccess."""

    async def tls_context() -> ssl.SSLContext:
        return control_plane

    access = BrokerAccess(broker_url=broker.service_url, tls_context=tls_context)

    async def enrol_device(name: str) -> Appliance:
        device_id = f"{name}-{uuid.uuid4().hex[:6]}"
        identity = DeviceIdentity(tmp_path / device_id)
        issued = fleet_ca.issue_device_certificates(
            validate_csr(identity.certificate_request()), device_id=device_id
        )
        pin = fleet_ca.fingerprint
        identity.install_agent(issued.agent.chain_pem, device_id=device_id, pinned_fingerprint=pin)
        identity.install(issued.device.chain_pem, pinned_fingerprint=pin)
        assert await access.grant(device_id) == Outcome.APPLIED
        return Appliance(identity)

    return enrol_device


def _connect(
    broker: MtlsBroker, context: ssl.SSLContext, client_id: str, *, port: int | None = None
) -> aiomqtt.Client:
    return aiomqtt.Client(
        HOST,
        broker.port if port is None else port,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        tls_context=context,
        timeout=10,
    )


def _register(broker: MtlsBroker, appliance: Appliance) -> aiomqtt.Client:
    """The replicator's session, as `edge.replication` opens it (client id = device id)."""
    return _connect(broker, appliance.context(agent=False), appliance.device_id)


def _agent(broker: MtlsBroker, appliance: Appliance) -> aiomqtt.Client:
    """The fleet agent's session, as `edge.agent.session` opens it."""
    return _connect(broker, appliance.context(agent=True), agent_client_id(appliance.device_id))


def _control_plane(
    broker: MtlsBroker, context: ssl.SSLContext, *, listener: str = "service"
) -> aiomqtt.Client:
    """A control-plane session, on the service listener as deployed (or the devices')."""
    port = broker.service_port if listener == "service" else broker.port
    return _connect(broker, context, f"cp-{uuid.uuid4().hex[:8]}", port=port)


async def _next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(10):  # guards against a hang; no assertion depends on it
        return await anext(client.messages)


def _codes(granted: object) -> list[int]:
    assert isinstance(granted, list)
    return [code.value for code in granted if isinstance(code, ReasonCode)]


async def test_another_certificate_cannot_take_over_a_devices_client_id(
    broker: MtlsBroker, enrol: Enrol, control_plane: ssl.SSLContext
) -> None:
    victim, attacker = await enrol("reg-victim"), await enrol("reg-attacker")
    own = victim.topic("journal/ack")
    async with _control_plane(broker, control_plane) as cp, _register(broker, victim) as register:
        await register.subscribe(own, qos=1)
        async with _connect(broker, attacker.context(agent=False), victim.device_id) as impostor:
            stolen = await impostor.subscribe(own, qos=1)
            await cp.publish(own, b"still yours", qos=1)
            received = await _next_message(register)  # raises if its session was closed

    assert received.payload == b"still yours"
    assert _codes(stolen) == [NOT_AUTHORIZED]  # and its session is its own, not the victim's
    log = broker.log.read_text()
    assert f"Client {victim.device_id} already connected, closing old connection." not in log


async def test_the_appliance_s_two_sessions_coexist_when_bound(
    broker: MtlsBroker, enrol: Enrol, control_plane: ssl.SSLContext
) -> None:
    """The register's and the agent's sessions, each with its own certificate of one key."""
    appliance = await enrol("reg-two-sessions")
    async with (
        _control_plane(broker, control_plane) as cp,
        _register(broker, appliance) as register,
        _agent(broker, appliance) as agent,
    ):
        acks = await register.subscribe(appliance.topic("journal/ack"), qos=1)
        commands = await agent.subscribe(appliance.topic("cmd"), qos=1)
        await cp.subscribe(f"sf/v1/d/{appliance.device_id}/#", qos=1)
        await cp.publish(appliance.topic("journal/ack"), b"hwm 7", qos=1)
        await cp.publish(appliance.topic("cmd"), b"open drawer", qos=1)
        ack, command = await _next_message(register), await _next_message(agent)
        await register.publish(appliance.topic("journal"), b"batch 8", qos=1)
        await agent.publish(appliance.topic("state"), b"config 3", qos=1)
        up = [(await _next_message(cp)).payload for _ in range(4)]  # its own 2 come back too

    assert (_codes(acks), _codes(commands)) == ([GRANTED_QOS_1], [GRANTED_QOS_1])
    assert (ack.payload, command.payload) == (b"hwm 7", b"open drawer")
    assert up[2:] == [b"batch 8", b"config 3"]
    log = broker.log.read_text()
    for client_id in (appliance.device_id, agent_client_id(appliance.device_id)):
        assert f"Client {client_id} already connected" not in log


@pytest.mark.parametrize(
    ("session", "channel", "sentinel"),
    [
        pytest.param("agent", "journal", "state", id="agent-publishes-the-journal"),
        pytest.param("agent", "telemetry", "state", id="agent-publishes-telemetry"),
        pytest.param("register", "state", "journal", id="register-publishes-state"),
        pytest.param("register", "status", "journal", id="register-publishes-presence"),
        pytest.param("register", "cmd/result", "journal", id="register-answers-a-command"),
        pytest.param("register", "cmd", "journal", id="register-publishes-a-command"),
        pytest.param("agent-of-other", "state", "state", id="agent-publishes-another-s-state"),
        pytest.param("agent-of-other", "cmd/result", "state",
                     id="agent-answers-for-another"),
    ],
)  # fmt: skip
async def test_a_certificate_cannot_publish_on_another_process_s_channel(
    broker: MtlsBroker,
    enrol: Enrol,
    control_plane: ssl.SSLContext,
    session: str,
    channel: str,
    sentinel: str,
) -> None:
    appliance, other = await enrol("reg-pub"), await enrol("reg-pub-other")
    target = other.topic(channel) if session == "agent-of-other" else appliance.topic(channel)
    open_session = _register if session == "register" else _agent
    async with (
        _control_plane(broker, control_plane) as cp,
        open_session(broker, appliance) as client,
    ):
        await cp.subscribe("sf/v1/d/#", qos=1)
        await client.publish(target, b"forged", qos=1)
        await client.publish(appliance.topic(sentinel), b"sentinel", qos=1)
        first = await _next_message(cp)

    assert (first.topic.value, first.payload) == (appliance.topic(sentinel), b"sentinel")


@pytest.mark.parametrize(
    ("session", "channel", "sentinel"),
    [
        pytest.param("register", "cmd", "journal/ack", id="register-takes-commands"),
        pytest.param("register", "config", "journal/ack", id="register-takes-configuration"),
        pytest.param("register", "release", "journal/ack", id="register-takes-releases"),
        pytest.param("agent", "journal/ack", "cmd", id="agent-takes-journal-acks"),
        pytest.param("agent-of-other", "cmd", "cmd", id="agent-takes-another-s-commands"),
        pytest.param("agent-of-other", "config", "cmd", id="agent-takes-another-s-config"),
    ],
)
async def test_a_certificate_cannot_subscribe_to_another_process_s_channel(
    broker: MtlsBroker,
    enrol: Enrol,
    control_plane: ssl.SSLContext,
    session: str,
    channel: str,
    sentinel: str,
) -> None:
    appliance, other = await enrol("reg-sub"), await enrol("reg-sub-other")
    target = other.topic(channel) if session == "agent-of-other" else appliance.topic(channel)
    open_session = _register if session == "register" else _agent
    async with (
        _control_plane(broker, control_plane) as cp,
        open_session(broker, appliance) as client,
    ):
        refused = await client.subscribe(target, qos=1)
        await client.subscribe(appliance.topic(sentinel), qos=1)
        await cp.publish(target, b"not for you", qos=1)
        await cp.publish(appliance.topic(sentinel), b"sentinel", qos=1)
        first = await _next_message(client)

    assert _codes(refused) == [NOT_AUTHORIZED]
    assert (first.topic.value, first.payload) == (appliance.topic(sentinel), b"sentinel")


async def test_the_control_plane_s_sessions_collide_on_the_bound_listener(
    broker: MtlsBroker, control_plane: ssl.SSLContext
) -> None:
    """Every control-plane session (ingest, configuration, access list, on every instance)
    presents CN `control-plane`: bound, the second closes the first."""
    async with _control_plane(broker, control_plane, listener="devices") as ingest:
        await ingest.subscribe("sf/v1/d/+/journal", qos=1)
        async with _control_plane(broker, control_plane, listener="devices"):
            with pytest.raises(aiomqtt.MqttError):
                await _next_message(ingest)  # closed: the second took "control-plane"


async def test_the_control_plane_s_sessions_coexist_on_the_service_listener(
    broker: MtlsBroker, enrol: Enrol, control_plane: ssl.SSLContext
) -> None:
    appliance = await enrol("reg-services")
    async with (
        _control_plane(broker, control_plane) as ingest,
        _control_plane(broker, control_plane) as configuration,
        _register(broker, appliance) as register,
    ):
        await ingest.subscribe(f"sf/v1/d/{appliance.device_id}/journal", qos=1)
        await configuration.publish(appliance.topic("config"), b"layer", qos=1)
        await register.publish(appliance.topic("journal"), b"batch 1", qos=1)
        received = await _next_message(ingest)  # raises if the second session closed it

    assert received.payload == b"batch 1"
