"""The broker config against a real Mosquitto: mTLS identity, per-device grants, SUBACK, CRL.

One Mosquitto per module on a free loopback port, configured only from images/mosquitto through
`write_broker_directory` (the dynamic-security plugin and its first document), with a CA made for
the module. Appliances enrol through the real `DeviceIdentity` path (key on "device", CSR, issue,
pinned install) and are granted through the control plane's real `BrokerAccess`, over
`$CONTROL/dynamic-security/v1`, as the control-plane certificate.

"Nothing delivered" is proven without waiting: after the forbidden message the publisher sends an
allowed sentinel (each publish awaits its PUBACK, so the broker has routed the first before the
second arrives), and the sentinel must be the first thing the subscriber receives.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from paho.mqtt.reasoncodes import ReasonCode

from control_plane.provisioning.broker_access import BrokerAccess, Outcome
from protocols.topics import SHARED_INGEST_GROUP
from provisioning.broker_config import write_broker_directory
from provisioning.ca import CertificateAuthority
from provisioning.device_keys import DeviceIdentity
from provisioning.keys import build_csr, generate_private_key, private_key_pem
from tests.control_plane.provisioning.fleet_harness import BrokerProcess
from tests.harness.services import free_port

pytestmark = pytest.mark.services

HOST = "127.0.0.1"
GRANTED_QOS_1 = 1
NOT_AUTHORIZED = 0x87

Broker = BrokerProcess  # the same mosquitto process the fleet harness runs
Enrol = Callable[..., Awaitable[DeviceIdentity]]


@pytest.fixture(scope="module")
def fleet_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    directory = tmp_path_factory.mktemp("fleet") / "ca"
    return CertificateAuthority.create(directory, passphrase=b"module passphrase, long enough")


@pytest.fixture(scope="module")
def broker(
    fleet_ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Broker]:
    directory = tmp_path_factory.mktemp("broker")
    port = free_port()
    files = write_broker_directory(
        directory,
        ca=fleet_ca,
        hostnames=["localhost", HOST],
        port=port,
        bind_address=HOST,
        # As root, mosquitto would switch to user "mosquitto", who cannot read the 0600 key.
        run_as_user="root" if os.geteuid() == 0 else None,
    )
    running = Broker(files, port, directory / "mosquitto.log")
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
    (directory / "ca.crt.pem").write_bytes(fleet_ca.root_pem)
    context = ssl.create_default_context(cafile=directory / "ca.crt.pem")
    context.load_cert_chain(directory / "cp.crt.pem", directory / "cp.key.pem")
    return context


@pytest.fixture(scope="module")
def access(broker: Broker, control_plane: ssl.SSLContext) -> BrokerAccess:
    async def tls_context() -> ssl.SSLContext:
        return control_plane

    return BrokerAccess(broker_url=broker.url, tls_context=tls_context)


@pytest.fixture
def enrol(fleet_ca: CertificateAuthority, access: BrokerAccess, tmp_path: Path) -> Enrol:
    """Enrol an appliance the way first boot does, granted on the broker as enrolment does."""

    async def enrol_device(name: str, *, granted: bool = True) -> DeviceIdentity:
        device_id = f"{name}-{uuid.uuid4().hex[:6]}"  # a module's broker outlives each test
        identity = DeviceIdentity(tmp_path / f"device-{device_id}")
        issued = fleet_ca.issue_device_certificate(
            identity.certificate_request(), device_id=device_id
        )
        identity.install(issued.chain_pem, pinned_fingerprint=fleet_ca.fingerprint)
        if granted:
            assert await access.grant(device_id) == Outcome.APPLIED
        return identity

    return enrol_device


def _device_context(identity: DeviceIdentity) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=identity.ca_path)
    context.load_cert_chain(identity.certificate_path, identity.key_path)
    return context


def _client(broker: Broker, context: ssl.SSLContext, name: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        HOST,
        broker.port,
        identifier=f"{name}-{uuid.uuid4().hex[:8]}",
        protocol=aiomqtt.ProtocolVersion.V5,
        tls_context=context,
        timeout=10,
    )


def _device(broker: Broker, identity: DeviceIdentity) -> aiomqtt.Client:
    return _client(broker, _device_context(identity), identity.device_id())


def _own(identity: DeviceIdentity, channel: str) -> str:
    return f"sf/v1/d/{identity.device_id()}/{channel}"


async def _next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(10):  # guards against a hang; no assertion depends on it
        return await anext(client.messages)


def _tls_refusal(broker: Broker, context: ssl.SSLContext) -> None:
    """Connect and read; mosquitto's refusal arrives as a TLS alert (TLS 1.3: after Finished)."""
    with (
        socket.create_connection((HOST, broker.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        tls.recv(1)


def _codes(granted: object) -> list[int]:
    assert isinstance(granted, list)
    return [code.value for code in granted if isinstance(code, ReasonCode)]


async def test_device_publishes_and_subscribes_its_own_register_channels(
    broker: Broker, enrol: Enrol, control_plane: ssl.SSLContext
) -> None:
    """The device certificate is the register's: journal up, its acks down (the agent's
    channels are its own certificate's: test_client_id_binding.py)."""
    device = await enrol("reg-a1")
    async with (
        _client(broker, control_plane, "cp") as cp,
        _device(broker, device) as appliance,
    ):
        await cp.subscribe("sf/v1/d/+/journal", qos=1)
        granted = await appliance.subscribe(_own(device, "journal/ack"), qos=1)

        await appliance.publish(_own(device, "journal"), b"batch-1", qos=1)
        up = await _next_message(cp)
        await cp.publish(_own(device, "journal/ack"), b"hwm 1", qos=1)
        down = await _next_message(appliance)

    assert _codes(granted) == [GRANTED_QOS_1]
    assert (up.topic.value, up.payload) == (_own(device, "journal"), b"batch-1")
    assert (down.topic.value, down.payload) == (_own(device, "journal/ack"), b"hwm 1")


async def test_device_cannot_publish_into_another_devices_subtree(
    broker: Broker, enrol: Enrol, control_plane: ssl.SSLContext
) -> None:
    device, other = await enrol("reg-a2"), await enrol("reg-b2")
    async with (
        _client(broker, control_plane, "cp") as cp,
        _device(broker, device) as appliance,
    ):
        await cp.subscribe("sf/v1/d/#", qos=1)

        await appliance.publish(_own(other, "journal"), b"forged", qos=1)
        await appliance.publish(_own(device, "journal"), b"sentinel", qos=1)
        first = await _next_message(cp)

    assert (first.topic.value, first.payload) == (_own(device, "journal"), b"sentinel")


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("#", id="everything"),
        pytest.param("sf/v1/#", id="the-fleet"),
        pytest.param("sf/v1/d/+/cmd", id="plus-over-devices"),
        pytest.param("+/v1/d/{own}/cmd", id="plus-at-the-root"),
        pytest.param("sf/v1/d/{other}/#", id="another-devices-subtree"),
        pytest.param("sf/v1/d/{other}/cmd", id="another-devices-topic"),
        pytest.param("$share/steal/sf/v1/d/+/cmd", id="shared-subscription"),
        pytest.param(f"$share/{SHARED_INGEST_GROUP}/sf/v1/d/+/cmd", id="the-ingest-group"),
        pytest.param("$share/steal/sf/v1/d/{own}/cmd", id="shared-over-its-own-subtree"),
        pytest.param("$CONTROL/dynamic-security/v1/response", id="the-admin-answers"),
    ],
)
async def test_a_filter_outside_the_devices_subtree_is_refused_at_suback(
    broker: Broker, enrol: Enrol, control_plane: ssl.SSLContext, template: str
) -> None:
    device, other = await enrol("reg-a3"), await enrol("reg-b3")
    topic_filter = template.format(own=device.device_id(), other=other.device_id())
    async with (
        _client(broker, control_plane, "cp") as cp,
        _device(broker, device) as appliance,
    ):
        refused = await appliance.subscribe(topic_filter, qos=1)
        await appliance.subscribe(_own(device, "journal/ack"), qos=1)

        await cp.publish(_own(other, "cmd"), b"not for you", qos=1)
        await cp.publish(_own(device, "cmd"), b"not through that filter", qos=1)
        await cp.publish(_own(device, "journal/ack"), b"sentinel", qos=1)
        first = await _next_message(appliance)

    assert _codes(refused) == [NOT_AUTHORIZED]
    assert (first.topic.value, first.payload) == (_own(device, "journal/ack"), b"sentinel")


async def test_a_device_cannot_join_the_ingest_group_and_take_journals(
    broker: Broker, enrol: Enrol, control_plane: ssl.SSLContext
) -> None:
    """The issue's attack: a thief in `$share/ingest/…` took half of another device's batches."""
    victim, thief = await enrol("reg-victim"), await enrol("reg-thief")
    shared = f"$share/{SHARED_INGEST_GROUP}/sf/v1/d/+/journal"
    batches = [f"batch-{seq}".encode() for seq in range(1, 41)]
    async with (
        _client(broker, control_plane, "ingest") as ingest,
        _device(broker, thief) as stealing,
        _device(broker, victim) as appliance,
    ):
        await ingest.subscribe(shared, qos=1)
        refused = await stealing.subscribe(shared, qos=1)
        await stealing.subscribe(_own(thief, "journal/ack"), qos=1)
        for batch in batches:
            await appliance.publish(_own(victim, "journal"), batch, qos=1)
        received = [(await _next_message(ingest)).payload for _ in batches]
        await ingest.publish(_own(thief, "journal/ack"), b"sentinel", qos=1)
        stolen = await _next_message(stealing)

    assert _codes(refused) == [NOT_AUTHORIZED]
    assert received == batches
    assert stolen.payload == b"sentinel"


async def test_a_certificate_the_broker_was_not_told_about_gets_nothing(
    broker: Broker, enrol: Enrol, control_plane: ssl.SSLContext
) -> None:
    stranger, known = await enrol("reg-stranger", granted=False), await enrol("reg-known")
    async with (
        _client(broker, control_plane, "cp") as cp,
        _device(broker, stranger) as unknown,
        _device(broker, known) as appliance,
    ):
        await cp.subscribe("sf/v1/d/#", qos=1)
        refused = await unknown.subscribe(_own(stranger, "journal/ack"), qos=1)

        await unknown.publish(_own(stranger, "journal"), b"unasked", qos=1)
        await appliance.publish(_own(known, "journal"), b"sentinel", qos=1)
        first = await _next_message(cp)

    assert _codes(refused) == [NOT_AUTHORIZED]
    assert first.payload == b"sentinel"


async def test_control_plane_ingests_through_a_shared_subscription(
    broker: Broker, enrol: Enrol, control_plane: ssl.SSLContext
) -> None:
    device = await enrol("reg-a4")
    async with (
        _client(broker, control_plane, "ingest") as ingest,
        _device(broker, device) as appliance,
    ):
        granted = await ingest.subscribe(f"$share/{SHARED_INGEST_GROUP}/sf/v1/d/+/journal", qos=1)
        await appliance.publish(_own(device, "journal"), b"batch-7", qos=1)
        message = await _next_message(ingest)

    assert _codes(granted) == [GRANTED_QOS_1]
    assert (message.topic.value, message.payload) == (_own(device, "journal"), b"batch-7")


def test_client_without_certificate_is_refused_at_tls(
    broker: Broker, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    (tmp_path / "ca.pem").write_bytes(fleet_ca.root_pem)
    context = ssl.create_default_context(cafile=tmp_path / "ca.pem")

    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
        _tls_refusal(broker, context)


def test_certificate_from_another_ca_is_refused_at_tls(
    broker: Broker, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    stranger_ca = CertificateAuthority.create(tmp_path / "stranger", passphrase=b"x" * 16)
    key = generate_private_key()
    # The most tempting forgery: a "control-plane" certificate from a CA the broker does not know.
    forged = stranger_ca.issue_control_plane_certificate(build_csr(key, common_name="x"))
    (tmp_path / "forged.crt.pem").write_bytes(forged.certificate_pem)
    (tmp_path / "forged.key.pem").write_bytes(private_key_pem(key, passphrase=None))
    context = ssl.create_default_context(cadata=fleet_ca.root_pem.decode())
    context.load_cert_chain(tmp_path / "forged.crt.pem", tmp_path / "forged.key.pem")

    with pytest.raises(ssl.SSLError, match="UNKNOWN_CA"):
        _tls_refusal(broker, context)


@pytest.mark.parametrize(
    "reload", [pytest.param(Broker.restart, id="restart"), pytest.param(Broker.reload, id="sighup")]
)
async def test_revoked_certificate_is_refused_once_the_crl_is_reloaded(
    broker: Broker,
    fleet_ca: CertificateAuthority,
    enrol: Enrol,
    reload: Callable[[Broker], None],
) -> None:
    revoked, kept = await enrol("reg-revoked"), await enrol("reg-kept")
    async with _device(broker, revoked):
        pass  # connects while its certificate is good

    fleet_ca.revoke(revoked.certificate().serial_number, x509.ReasonFlags.key_compromise)
    fleet_ca.write_crl(broker.files.crlfile)
    reload(broker)

    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REVOKED"):
        _tls_refusal(broker, _device_context(revoked))
    async with _device(broker, kept) as still_fine:  # its grant survived the restart too
        granted = await still_fine.subscribe(_own(kept, "journal/ack"), qos=1)
        await still_fine.publish(_own(kept, "journal"), b"batch", qos=1)
    assert _codes(granted) == [GRANTED_QOS_1]
