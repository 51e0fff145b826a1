"""The ingest worker: MQTT in, SQL store, acks out.

How it works: one MQTT connection subscribes to every device's journal (as a shared subscription
``$share/ingest/…`` when the broker supports it, so several control-plane instances split the
load) and to status, telemetry, retained state and command results. Journal batches are fanned
out to a fixed number of partition tasks by device id, so one device's batches are stored in
arrival order while different devices proceed in parallel. The API publishes commands on the
same connection (:meth:`IngestWorker.publish`).

The connection is a :class:`mqttlink.link.MqttLink`: every wait on the broker (connect, each
subscribe, each ack's PUBACK, disconnect) is bounded by ``asyncio.timeout``, not aiomqtt's
``wait_for``, which on Python 3.11 swallows a cancellation landing as the PUBACK arrives (CPython
gh-86296): a worker cancelled at that moment went on serving and its shutdown hung. Reconnects
wait with :class:`mqttlink.backoff.Backoff` (full jitter, afresh after a healthy connection).

Bad input: nothing a publisher sends can stop the loop or grow the process. Received messages
wait in a bounded :class:`~control_plane.ingest.inbox.Inbox` (count and bytes; a payload over its
channel's limit is dropped before it is queued or parsed), and parsed batches waiting for their
partition hold a share of a :class:`~control_plane.ingest.inbox.ByteBudget`: when it is spent the
receiver waits and the inbox sheds, so memory has a ceiling whatever the database's pace. After
a flood the freed heap goes back to the OS. Every message that cannot be used — not decodable, a
state or command result the domain will not keep, an unknown device — is counted by reason and
dropped; :class:`~control_plane.ingest.drops.DropLog` logs one line per reason per interval and a
tally, never a traceback, so a flood costs counters, not disk.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import uuid
import zlib
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import NamedTuple

import aiomqtt
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.alerts import events as alert_events
from control_plane.commands import service as commands
from control_plane.devices import presence
from control_plane.devices import state as device_state
from control_plane.ingest import metrics
from control_plane.ingest.drops import DropLog
from control_plane.ingest.held_connection import HeldConnection
from control_plane.ingest.inbox import ByteBudget, inbox_type, release_heap
from control_plane.ingest.service import UnknownDevice, ingest_batch
from control_plane.rollouts import progress as rollout_progress
from mqttlink.backoff import Backoff
from mqttlink.heap import freeze_startup_heap
from mqttlink.link import MqttLink
from mqttlink.reconnect import reconnect_forever
from protocols.broker_url import BrokerAddress
from protocols.codec import decode, encode
from protocols.errors import ProtocolError
from protocols.messages import (
    CommandResult,
    Event,
    JournalAck,
    JournalBatch,
    Message,
    State,
    Status,
    Telemetry,
)
from protocols.topics import Channel, all_devices_filter, device_topic, shared_filter

log = logging.getLogger(__name__)


class Parsed(NamedTuple):
    """A decoded batch on its way to its partition, with the budget bytes it holds."""

    device_id: str
    batch: JournalBatch
    held: int


class Update(NamedTuple):
    """A decoded message other than a journal batch, waiting for the updates task."""

    topic: str
    device_id: str
    body: Message


class NotConnectedError(ConnectionError):
    """The worker holds no broker connection right now, so nothing can be published."""


@dataclass(frozen=True, kw_only=True)
class IngestSettings:
    """How the worker subscribes and how much it does at once."""

    shared_subscription: bool = True
    partitions: int = 4
    queue_depth: int = 8  # batches parsed and waiting per partition: bounds memory under a flood
    updates_depth: int = 1000  # presence, state, results, events waiting for the database
    backoff_initial: float = 0.2  # the first reconnect waits up to this (full jitter)
    backoff_max: float = 10.0
    healthy_s: float = 30.0  # connected this long: the next reconnect starts from backoff_initial
    timeout_s: float = 10.0  # bound on each wait for the broker (connect, SUBACK, PUBACK)
    inbox_messages: int = 2000  # received, not yet handled: beyond it a message is shed
    inbox_bytes: int = 32 * 1024 * 1024  # their payloads: a few full-size journal batches
    parsed_bytes: int = 16 * 1024 * 1024  # payload bytes of parsed batches awaiting a partition
    drop_log_interval: float = 10.0  # one log line per drop reason per interval, then a tally
    # drops in one interval that make a flood: only after one is the heap handed back to the OS
    # (a full garbage collection holds the interpreter, and every device's acks, for tens of ms)
    flood_drops: int = 200


class IngestWorker:
    """Runs until cancelled, reconnecting to the broker as needed."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        broker: BrokerAddress,
        settings: IngestSettings | None = None,
        tls_context: ssl.SSLContext | None = None,
        identifier: str | None = None,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.settings = settings or IngestSettings()
        self.tls_context = tls_context
        self.identifier = identifier or f"control-plane-{uuid.uuid4().hex[:8]}"
        self.connected = asyncio.Event()
        #: Batches this instance stored (not duplicates-only): lets an operator see the split.
        self.batches_stored = 0
        self.drops = DropLog(interval=self.settings.drop_log_interval)
        self._parsed = ByteBudget(self.settings.parsed_bytes)  # a fresh one for each session
        self._link: MqttLink | None = None

    async def publish(
        self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False
    ) -> None:
        """Publish on the live connection (the API's commands go down the ingest connection;
        a rollout's desired release is ``retain``-ed, so a device offline now gets it on return).

        Raises :class:`NotConnectedError` when there is none, or it failed under the publish.
        """
        link = self._link
        if link is None:
            raise NotConnectedError(f"not connected to the broker {self.broker.url}")
        try:
            await link.publish(topic, payload, qos=qos, retain=retain)
        except aiomqtt.MqttError as err:
            raise NotConnectedError(f"publish to {self.broker.url} failed: {err}") from err

    async def run(self) -> None:
        """Serve forever; each lost connection is logged and retried with jittered backoff.

        The process's start-up heap is frozen first (:mod:`mqttlink.heap`): a full collection
        walking it held every partition, and so every device's ack, for tens of milliseconds.
        """
        freeze_startup_heap()
        await reconnect_forever(
            self._session,
            backoff=Backoff.from_settings(self.settings, healthy_s=self.settings.healthy_s),
            log=log,
            what="ingest",
            url=self.broker.url,
            lost=self.connected.clear,
        )

    async def _session(self, backoff: Backoff) -> None:
        async with MqttLink(
            broker=self.broker,
            identifier=self.identifier,
            clean_session=True,
            keepalive=15,
            timeout_s=self.settings.timeout_s,
            tls_context=self.tls_context,
            queue_type=inbox_type(max_bytes=self.settings.inbox_bytes, drops=self.drops),
            max_queued_incoming_messages=self.settings.inbox_messages,
        ) as client:
            journal_filter = (
                shared_filter(Channel.JOURNAL)
                if self.settings.shared_subscription
                else all_devices_filter(Channel.JOURNAL)
            )
            await client.subscribe(journal_filter, qos=1)
            await client.subscribe(all_devices_filter(Channel.STATUS), qos=1)
            await client.subscribe(all_devices_filter(Channel.TELEMETRY), qos=0)
            # state is retained and idempotent: every instance keeps it. A result is stored once,
            # so instances share them like journal batches.
            await client.subscribe(all_devices_filter(Channel.STATE), qos=1)
            results_filter = (
                shared_filter(Channel.CMD_RESULT)
                if self.settings.shared_subscription
                else all_devices_filter(Channel.CMD_RESULT)
            )
            await client.subscribe(results_filter, qos=1)
            # events (release progress) are applied once, shared like results
            events_filter = (
                shared_filter(Channel.EVENTS)
                if self.settings.shared_subscription
                else all_devices_filter(Channel.EVENTS)
            )
            await client.subscribe(events_filter, qos=1)
            log.info(
                "ingest %s: subscribed to %s on %s",
                self.identifier,
                journal_filter,
                self.broker.url,
            )
            queues: list[asyncio.Queue[Parsed]] = [
                asyncio.Queue(self.settings.queue_depth) for _ in range(self.settings.partitions)
            ]
            updates: asyncio.Queue[Update] = asyncio.Queue(self.settings.updates_depth)
            self._parsed = ByteBudget(self.settings.parsed_bytes)  # the old queues are gone
            self._link = client
            self.connected.set()
            backoff.up()
            try:
                async with asyncio.TaskGroup() as tasks:
                    for number, queue in enumerate(queues):
                        tasks.create_task(self._partition(client, queue), name=f"ingest-{number}")
                    tasks.create_task(self._receive(client, queues, updates), name="ingest-receive")
                    tasks.create_task(self._apply_updates(updates), name="ingest-updates")
                    tasks.create_task(self._flush_drop_log(), name="ingest-drop-log")
            finally:
                self._link = None
                self.connected.clear()
                self.drops.flush()

    async def _flush_drop_log(self) -> None:
        """Log the tally of a flood soon after it ends, and give its memory back to the OS.

        Only after a flood: a device the registry does not know drops a few messages in every
        interval, and collecting the whole heap for them stalled the loop (py-spy: 7-11 % of the
        control plane's samples in bench/replication.py, its unregistered RSS probe).
        """
        while True:
            await asyncio.sleep(self.drops.interval)
            if self.drops.flush() >= self.settings.flood_drops:
                await asyncio.to_thread(release_heap)

    async def _receive(
        self,
        client: MqttLink,
        queues: list[asyncio.Queue[Parsed]],
        updates: asyncio.Queue[Update],
    ) -> None:
        async for message in client.messages:
            topic = str(message.topic)
            try:
                await self._handle(topic, message.payload, queues, updates)
            except ProtocolError as err:
                where = "" if err.topic else f" (topic {topic!r})"
                self.drops.drop(err.metric_label, f"{err}{where}; dropped")

    async def _handle(
        self,
        topic: str,
        payload: object,
        queues: list[asyncio.Queue[Parsed]],
        updates: asyncio.Queue[Update],
    ) -> None:
        """Decode one message and queue it for its partition or the updates task.

        Raises :class:`ProtocolError` if it is unusable.
        """
        if isinstance(payload, bytes):
            raw = payload
        elif isinstance(payload, bytearray | memoryview):
            raw = bytes(payload)
        else:
            raw = str(payload).encode()
        inbound = decode(topic, raw)  # the inbox has already refused an oversized payload
        device_id, body = inbound.address.device_id, inbound.message
        if isinstance(body, JournalBatch):
            partition = zlib.crc32(device_id.encode()) % len(queues)
            held = await self._parsed.acquire(len(raw))  # back-pressure: the inbox sheds
            await queues[partition].put(Parsed(device_id, body, held))
        else:
            await updates.put(Update(topic, device_id, body))

    async def _apply_updates(self, updates: asyncio.Queue[Update]) -> None:
        """Presence, state, results and events, in arrival order, beside the journal's flow.

        Why a task of their own: each is a database write, and awaited on the receiving loop it
        held up every journal batch behind it (a heartbeat's write before a sale's batch was a
        sale's lag); now the receiver only queues them. The queue is bounded, so a flood of them
        still slows the receiver (and the inbox sheds) instead of growing memory.
        """
        while True:
            update = await updates.get()
            try:
                await self._apply(update.topic, update.device_id, update.body)
            except ProtocolError as err:
                where = "" if err.topic else f" (topic {update.topic!r})"
                self.drops.drop(err.metric_label, f"{err}{where}; dropped")

    async def _apply(self, topic: str, device_id: str, body: Message) -> None:
        """Hand one decoded message other than a journal batch to its domain."""
        if isinstance(body, Status):
            await self._guard(device_id, presence.apply_status(self.engine, device_id, body))
        elif isinstance(body, Telemetry):
            await self._guard(device_id, presence.apply_telemetry(self.engine, device_id, body))
        elif isinstance(body, State):
            await self._guard(device_id, device_state.apply_state(self.engine, device_id, body))
        elif isinstance(body, CommandResult):
            await self._result(device_id, body)
        elif isinstance(body, Event):
            await self._event(device_id, body)
        else:
            self.drops.drop("unexpected_channel", f"{topic} is not an upstream message; dropped")

    async def _guard(self, device_id: str, update: Awaitable[bool]) -> None:
        """Presence and state updates are best effort: a failure is counted, never fatal.

        A :class:`ProtocolError` (a report the domain will not keep) passes through to be
        counted like any malformed message.
        """
        try:
            known = await update
        except ProtocolError:
            raise
        except Exception as err:  # the database: logged as one line, the next message goes on
            self._store_failed("presence_error", f"could not record presence of {device_id}", err)
            return
        if known is False:
            self.drops.drop(
                "unknown_device",
                f"{device_id} is not registered (or was decommissioned); register it or check "
                "its certificate. Dropped",
            )

    async def _result(self, device_id: str, result: CommandResult) -> None:
        """Keep a command's result; one that answers no command of ours is counted and dropped."""
        try:
            recorded = await commands.record_result(self.engine, device_id, result)
        except ProtocolError:
            raise
        except Exception as err:
            self._store_failed(
                "store_error", f"could not record the result of command {result.id!r}", err
            )
            return
        if recorded != "recorded":
            self.drops.drop(
                f"{recorded}_command_result",
                f"{recorded} result {result.id!r} from {device_id}; dropped",
            )

    async def _event(self, device_id: str, event: Event) -> None:
        """A ``release.progress`` moves the device in its rollout; a crash loop or recovery is
        kept for the fleet alerts; other kinds are not kept yet."""
        if event.kind in alert_events.KEPT:
            try:
                await alert_events.record_event(
                    self.engine,
                    device_id,
                    kind=event.kind,
                    ts=event.ts,
                    body=event.body,
                    now_ms=time.time_ns() // 1_000_000,
                )
            except Exception as err:
                self._store_failed(
                    "store_error", f"could not keep {event.kind} of {device_id}", err
                )
            return
        if event.kind != rollout_progress.KIND:
            return
        try:
            applied = await rollout_progress.apply_progress(self.engine, device_id, event)
        except ProtocolError:
            raise
        except Exception as err:
            self._store_failed(
                "store_error", f"could not apply release progress of {device_id}", err
            )
            return
        if applied == "unknown":
            self.drops.drop(
                "unknown_release_progress",
                f"release progress from {device_id} names no rollout of it; dropped",
            )

    def _store_failed(self, reason: str, what: str, err: Exception) -> None:
        """One line for a database failure; its traceback only with debug logging on."""
        cause = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
        self.drops.drop(reason, f"{what}: {type(cause).__name__}: {cause}", level=logging.ERROR)
        log.debug("ingest: %s", what, exc_info=err)

    async def _partition(self, client: MqttLink, queue: asyncio.Queue[Parsed]) -> None:
        acks: asyncio.Queue[tuple[str, JournalAck]] = asyncio.Queue()
        held = HeldConnection(self.engine)  # one connection for the partition's batches
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._send_acks(client, acks), name="ingest-acks")
                while True:
                    parsed = await queue.get()
                    started = time.perf_counter()
                    try:
                        ack = await self._store(parsed.device_id, parsed.batch, held)
                    finally:
                        await self._parsed.release(parsed.held)
                    if ack is not None:
                        acks.put_nowait((parsed.device_id, ack))
                    metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        finally:
            await held.discard()

    async def _send_acks(
        self, client: MqttLink, acks: asyncio.Queue[tuple[str, JournalAck]]
    ) -> None:
        """Publish acks in order without holding up the next batch for the broker's PUBACK."""
        while True:
            device_id, ack = await acks.get()
            await client.publish(device_topic(device_id, Channel.JOURNAL_ACK), encode(ack), qos=1)

    async def _store(
        self, device_id: str, batch: JournalBatch, held: HeldConnection
    ) -> JournalAck | None:
        try:
            outcome = await ingest_batch(
                engine=self.engine,
                device_id=device_id,
                batch=batch,
                now_ms=time.time_ns() // 1_000_000,
                conn=await held.get(),
            )
        except UnknownDevice as err:
            self.drops.drop(
                "unknown_device", f"{err}; register it or check its certificate. Batch dropped"
            )
            return None
        except Exception as err:
            await held.discard()  # it may be broken: the next batch takes a fresh one
            self._store_failed(
                "store_error",
                f"could not store a batch of {device_id}; not acked, the appliance will resend",
                err,
            )
            return None
        if outcome.problem is not None:
            self.drops.note("journal", f"device {device_id}: {outcome.problem}")
        if outcome.stored:
            self.batches_stored += 1
        return outcome.ack
