"""The journal replicator: sends the ledger to the cloud in seq order until the cloud acks it.

How it works (go-back-N over MQTT QoS 1):

* On every connect the send cursor starts at ``acked + 1`` — the ledger, not memory, says where
  to resume, so a restart, a reboot or days offline all resume the same way.
* Records go out in batches of consecutive seqs, at most ``window`` records beyond the last ack.
* The cloud answers on ``journal/ack`` with its contiguous high-water mark and the hash at it.
  The ledger's acked mark moves only then, and only if that hash is ours.
* ``resend_from`` (the cloud saw a gap) or no ack progress within ``ack_timeout`` moves the cursor
  back to the first record the cloud may lack. Duplicates cost the cloud a no-op, never a double
  booking, because it stores ``UNIQUE(device_id, seq)``.
* A refusal the appliance cannot fix by resending (``error`` on the ack: a broken chain, a record
  the cloud cannot store) pauses sending and raises the alarm (:attr:`Replicator.refusal`, the
  ``storefleet_edge_replication_refused`` gauge) instead of hammering the broker. The pause
  starts at ``error_backoff`` and doubles up to ``error_backoff_max`` while the refusal repeats,
  so a cloud that was fixed is found again without anyone touching the register.
* An ack is input like any other: a malformed one (``hwm`` ≥ 2^63, a string, a huge error) is
  refused by the codec, and one that acknowledges records this ledger never wrote is impossible
  from a genuine cloud; both are counted in ``storefleet_edge_messages_dropped``, logged once and
  dropped. Neither pauses sending, or anyone able to publish on the topic could stop it.
* Connection loss ends the session; the next connect backs off exponentially with full jitter.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
from cryptography import x509

from edge.ledger import Ledger
from edge.ledger.ledger import StoredRecord
from edge.replication import metrics
from mqttlink.backoff import Backoff
from mqttlink.heap import freeze_startup_heap
from mqttlink.reconnect import reconnect_forever
from protocols.broker_url import BrokerAddress
from protocols.codec import decode, encode
from protocols.errors import ProtocolError
from protocols.journal_signing import HeadSigner
from protocols.journal_wire import batch_bytes
from protocols.messages import JournalAck, Status, Telemetry
from protocols.topics import Channel, device_topic
from provisioning.device_keys import DeviceIdentity

log = logging.getLogger(__name__)

#: Acks are tiny and latency-bound: without this, Nagle and delayed ACKs add ~40 ms per hop.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)

LagObserver = Callable[[int, float], None]


@dataclass(frozen=True, kw_only=True)
class ReplicationSettings:
    """Tuning of the sender; the defaults suit a store on a slow, flaky uplink."""

    batch_size: int = 500
    window: int = 4000
    ack_timeout: float = 5.0
    telemetry_interval: float = 5.0
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    error_backoff: float = 30.0
    error_backoff_max: float = 600.0
    keepalive: int = 15


@dataclass
class _Session:
    """What one broker connection knows; thrown away on disconnect."""

    cursor: int
    last_progress: float = field(default_factory=time.monotonic)
    rewound_to: int = 0
    rewound_at: float = 0.0
    paused_until: float = 0.0


class Replicator:
    """Replicates one ledger; run :meth:`run` in a task for the life of the appliance."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        device_id: str,
        broker: BrokerAddress,
        settings: ReplicationSettings | None = None,
        tls_context: ssl.SSLContext | None = None,
        versions: dict[str, str] | None = None,
        lag_observer: LagObserver | None = None,
        identity_dir: Path | None = None,
        presence: bool = True,
    ) -> None:
        self.ledger = ledger
        #: Whether this replicator says ``status`` (online, offline as its last will). Not when
        #: a fleet agent runs beside it: the appliance's presence is the agent's
        #: (edge.agent.presence), and a register restart must not read as the store going away.
        self.presence = presence
        #: Where the device's key and certificate are: each batch head is signed with them.
        #: None (a ledger-only bench or development appliance) sends unsigned batches, which
        #: the cloud refuses from any device that has a certificate.
        self.head_signing = _HeadSigning(device_id, identity_dir) if identity_dir else None
        self.device_id = device_id
        self.broker = broker
        self.settings = settings or ReplicationSettings()
        self.tls_context = tls_context
        self.versions = versions or {}
        self.boot_id = uuid.uuid4().hex
        self.connected = asyncio.Event()
        self.last_lag_ms: int | None = None
        #: The cloud's last refusal (``error`` on an ack) until replication moves again: the alarm.
        self.refusal: str | None = None
        self._refusal_backoff = self.settings.error_backoff
        self._lag_observer = lag_observer
        self._sent: dict[int, tuple[int, str]] = {}
        self._session: _Session | None = None
        self._labels = {"device_id": device_id}

    async def run(self) -> None:
        """Connect, replicate, reconnect with jittered backoff; returns only when cancelled.

        The backoff starts afresh after a session in which the cloud acked records: the uplink
        worked, so the next loss is a new outage, not the same one getting longer.

        The process's start-up heap is frozen first (:mod:`mqttlink.heap`): a full collection
        walking it stalled the acks' handling, a sale's lag.
        """
        freeze_startup_heap()
        await reconnect_forever(
            self._connected_session,
            backoff=Backoff.from_settings(self.settings),
            log=log,
            what=f"device {self.device_id}",
            url=self.broker.url,
            lost=self._forget_session,
            on_error=self._count_loss,
            progress=lambda: self.ledger.acked_seq,
            meanwhile="sales continue offline",
        )

    def _count_loss(self, _err: Exception) -> None:
        metrics.CONNECTS.labels(self.device_id, "lost").inc()

    def _forget_session(self) -> None:
        self.connected.clear()
        self._session = None

    def _client(self) -> aiomqtt.Client:
        will = None
        if self.presence:
            will = aiomqtt.Will(
                device_topic(self.device_id, Channel.STATUS),
                encode(Status(state="offline", boot_id=self.boot_id, versions=self.versions)),
                qos=1,
                retain=True,
            )
        return aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            identifier=self.device_id,
            will=will,
            clean_session=True,
            keepalive=self.settings.keepalive,
            timeout=10,
            tls_context=self.tls_context,
            socket_options=NO_DELAY,
        )

    async def _connected_session(self, _backoff: Backoff) -> None:
        async with self._client() as client:
            metrics.CONNECTS.labels(self.device_id, "ok").inc()
            await client.subscribe(device_topic(self.device_id, Channel.JOURNAL_ACK), qos=1)
            if self.presence:
                await client.publish(
                    device_topic(self.device_id, Channel.STATUS),
                    encode(self._status("online")),
                    qos=1,
                    retain=True,
                )
            self._session = _Session(cursor=self.ledger.acked_seq + 1)
            self._sent.clear()
            self.connected.set()
            log.info(
                "device %s: connected to %s, resuming at seq %d",
                self.device_id,
                self.broker.url,
                self._session.cursor,
            )
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._send_loop(client), name="journal-sender")
                    tasks.create_task(self._ack_loop(client), name="journal-ack-reader")
                    tasks.create_task(self._telemetry_loop(client), name="telemetry")
            finally:
                self.connected.clear()
                await self._say_offline(client)

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """On a clean stop the broker sends no last will, so say goodbye ourselves."""
        if not self.presence:
            return
        try:
            async with asyncio.timeout(1):
                await client.publish(
                    device_topic(self.device_id, Channel.STATUS),
                    encode(self._status("offline")),
                    qos=1,
                    retain=True,
                )
        except (aiomqtt.MqttError, TimeoutError, OSError):
            pass  # connection already gone: the broker publishes the last will instead

    def _status(self, state: str) -> Status:
        return Status.model_validate(
            {
                "state": state,
                "boot_id": self.boot_id,
                "versions": self.versions,
                "ts": time.time_ns() // 1_000_000,
            }
        )

    # -- sending --------------------------------------------------------------------------------

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        session = self._require_session()
        topic = device_topic(self.device_id, Channel.JOURNAL)
        ledger, settings = self.ledger, self.settings
        while True:
            ledger.changed.clear()
            now = time.monotonic()
            outstanding = session.cursor - 1 - ledger.acked_seq
            if now < session.paused_until:
                await self._wait(session.paused_until - now)
                continue
            if session.cursor <= ledger.last_seq and outstanding < settings.window:
                limit = min(settings.batch_size, settings.window - max(0, outstanding))
                records = await ledger.read_records(session.cursor, limit)
                if not records:
                    continue
                payload = self._batch([r.record for r in records], records[-1])
                await _publish(client, topic, payload, qos=1)
                for record in records:
                    self._sent[record.seq] = (record.ts, record.hash)
                metrics.SENT.labels(self.device_id).inc(len(records))
                session.cursor = records[-1].seq + 1
                continue
            if outstanding > 0:
                remaining = settings.ack_timeout - (now - session.last_progress)
                if remaining <= 0:
                    self._rewind(session, ledger.acked_seq + 1, why="ack_timeout")
                    continue
                await self._wait(remaining)
            else:
                await self._wait(None)

    def _batch(self, wire: list[str], last: StoredRecord) -> bytes:
        """The batch's bytes, its head signed when this appliance has an identity."""
        if self.head_signing is None:
            return batch_bytes(wire, sent_at=_now_ms())
        signer = self.head_signing.signer()
        return batch_bytes(
            wire,
            sent_at=_now_ms(),
            head_sig=signer.sign(seq=last.seq, record_hash=last.hash),
            cert_fp=signer.fingerprint,
            cert=signer.certificate_field,
        )

    async def _wait(self, timeout: float | None) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self.ledger.changed.wait()
        except TimeoutError:
            pass

    def _rewind(self, session: _Session, to_seq: int, *, why: str) -> None:
        now = time.monotonic()
        if to_seq == session.rewound_to and now - session.rewound_at < self.settings.ack_timeout:
            return  # already went back there; the resent records are on their way
        if to_seq >= session.cursor:
            return
        log.info("device %s: resending from seq %d (%s)", self.device_id, to_seq, why)
        metrics.RESENDS.labels(self.device_id, why).inc()
        session.cursor = to_seq
        session.rewound_to, session.rewound_at = to_seq, now
        session.last_progress = now
        self.ledger.changed.set()

    def _require_session(self) -> _Session:
        if self._session is None:
            raise RuntimeError("replication session used outside a connection")
        return self._session

    # -- acks -----------------------------------------------------------------------------------

    async def _ack_loop(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = str(payload).encode()
            try:
                inbound = decode(str(message.topic), bytes(payload))
            except ProtocolError as err:
                self._drop(err.metric_label, str(err))
                continue
            if isinstance(inbound.message, JournalAck):
                await self._on_ack(inbound.message)

    def _drop(self, reason: str, detail: str) -> None:
        """Count and log one unusable message; sales and replication carry on."""
        metrics.DROPPED.labels(self.device_id, reason).inc()
        log.warning(
            "device %s: dropped a message from the broker (%s): %s. Sales and replication"
            " continue; if it repeats, find who publishes on this device's topics",
            self.device_id,
            reason,
            detail,
        )

    def _impossible(self, ack: JournalAck) -> str | None:
        """Why ``ack`` cannot come from a cloud replicating this ledger, or None if it can."""
        last = self.ledger.last_seq
        if ack.hwm > last:
            return (
                f"ack for seq {ack.hwm}, but this ledger ends at seq {last}: a forged ack, or"
                " another appliance (or an older copy of this ledger) using this device id"
            )
        if ack.resend_from is not None and ack.resend_from > last + 1:
            return f"resend from seq {ack.resend_from}, but this ledger ends at seq {last}"
        return None

    async def _on_ack(self, ack: JournalAck) -> None:
        session = self._require_session()
        ledger = self.ledger
        impossible = self._impossible(ack)
        if impossible is not None:
            self._drop("impossible_ack", impossible)
            return
        if ack.error is not None:
            self._refused(session, ack)
        if ack.hwm > ledger.acked_seq:
            arrived = time.time_ns() / 1e6
            sent = self._sent.get(ack.hwm)
            ours = sent[1] if sent is not None else await ledger.hash_at(ack.hwm)
            if ours != ack.head_hash:
                session.paused_until = time.monotonic() + self.settings.error_backoff
                log.error(
                    "device %s: cloud's chain head at seq %d differs from ours; not marking it"
                    " replicated. Check for a replaced appliance using this device id",
                    self.device_id,
                    ack.hwm,
                )
                return
            previous = ledger.acked_seq
            self._observe_lag(previous + 1, ack.hwm, arrived)
            await ledger.mark_acked(ack.hwm)
            session.last_progress = time.monotonic()
            if ack.error is None:
                self._accepted()
        if ack.resend_from is not None and ack.error is None:
            self._rewind(session, ack.resend_from, why="resend_from")
        metrics.BACKLOG.labels(self.device_id).set(ledger.backlog)

    def _refused(self, session: _Session, ack: JournalAck) -> None:
        """Raise the alarm and pause; the pause doubles while the same refusal comes back."""
        pause = self._refusal_backoff
        session.paused_until = time.monotonic() + pause
        self._refusal_backoff = min(self.settings.error_backoff_max, pause * 2)
        self.refusal = ack.error
        metrics.REFUSED.labels(self.device_id).set(1)
        metrics.REFUSALS.labels(self.device_id).inc()
        log.error(
            "device %s: cloud refused the journal at seq %d: %s; pausing %.0fs. Sales continue"
            " and stay in the ledger. If it repeats, the ledger needs support (do not wipe it)",
            self.device_id,
            ack.hwm + 1,
            ack.error,
            pause,
        )

    def _accepted(self) -> None:
        """The cloud took records again: the alarm is over."""
        if self.refusal is not None:
            log.info("device %s: the cloud accepts the journal again", self.device_id)
        self.refusal = None
        self._refusal_backoff = self.settings.error_backoff
        metrics.REFUSED.labels(self.device_id).set(0)

    def _observe_lag(self, first: int, last: int, arrived_ms: float) -> None:
        """Lag is commit → the cloud's ack arriving: the moment the sale is safe off the box."""
        histogram = metrics.LAG.labels(self.device_id)
        for seq in range(first, last + 1):
            sent = self._sent.pop(seq, None)
            if sent is None:
                continue
            lag_s = max(0.0, (arrived_ms - sent[0]) / 1000)
            histogram.observe(lag_s)
            self.last_lag_ms = int(lag_s * 1000)
            if self._lag_observer is not None:
                self._lag_observer(seq, lag_s)

    # -- telemetry ------------------------------------------------------------------------------

    async def _telemetry_loop(self, client: aiomqtt.Client) -> None:
        topic = device_topic(self.device_id, Channel.TELEMETRY)
        while True:
            metrics.BACKLOG.labels(self.device_id).set(self.ledger.backlog)
            heartbeat = Telemetry(
                ts=_now_ms(),
                backlog=self.ledger.backlog,
                last_seq=self.ledger.last_seq,
                lag_ms=self.last_lag_ms,
            )
            await _publish(client, topic, encode(heartbeat), qos=0)
            await asyncio.sleep(self.settings.telemetry_interval)


async def _publish(
    client: aiomqtt.Client, topic: str, payload: bytes, *, qos: int, retain: bool = False
) -> None:
    """``client.publish``, then honour a cancellation that Python 3.11 may have swallowed.

    aiomqtt waits for the PUBACK with ``asyncio.wait_for``, which on 3.11 returns the result when
    the PUBACK and a cancellation arrive in the same loop iteration, dropping the CancelledError
    (the task still counts it in ``cancelling()``). A loop that went on publishing would never
    end, and the TaskGroup stopping the session would wait for it forever.

    Only for the session's child tasks: nothing else cancels them, so ``cancelling()`` is
    exact there. The replicator's own task is not one: on 3.11 a TaskGroup whose child failed
    can leave its parent's count raised for good (it never calls ``uncancel()``), which would
    read as a stop request on the next connection.
    """
    await client.publish(topic, payload, qos=qos, retain=retain)
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class _HeadSigning:
    """The identity directory's key and certificate, read again when the certificate changes.

    A renewal installs a new certificate file (same key); the next batch is signed for it, so
    the cloud sees the certificate it just issued. One ``stat`` per batch finds out.
    """

    def __init__(self, device_id: str, identity_dir: Path) -> None:
        self.device_id = device_id
        self.identity = DeviceIdentity(identity_dir)
        self._seen: tuple[int, int] | None = None
        self._signer: HeadSigner | None = None

    def signer(self) -> HeadSigner:
        """The signer for the certificate installed now."""
        stat = self.identity.certificate_path.stat()
        changed = (stat.st_ino, stat.st_mtime_ns)
        if self._signer is None or changed != self._seen:
            self._signer = HeadSigner(
                device_id=self.device_id,
                private_key=self.identity.ensure_key(),
                chain=x509.load_pem_x509_certificates(self.identity.certificate_path.read_bytes()),
            )
            self._seen = changed
        return self._signer


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
