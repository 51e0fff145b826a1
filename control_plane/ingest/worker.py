"""The ingest worker: MQTT in, SQL store, acks out.

How it works: one MQTT connection subscribes to every device's journal (as a shared subscription
``$share/ingest/…`` when the broker supports it, so several control-plane instances split the
load) and to status, telemetry, retained state and command results. Journal batches are fanned
out to a fixed number of partition tasks by device id, so one device's batches are stored in
arrival order while different devices proceed in parallel. Every message that cannot be used is
counted, logged and dropped; nothing a publisher sends can stop the loop. The API publishes
commands on the same connection (:meth:`IngestWorker.publish`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
import time
import uuid
import zlib
from collections.abc import Awaitable
from dataclasses import dataclass

import aiomqtt
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.commands import service as commands
from control_plane.devices import presence
from control_plane.devices import state as device_state
from control_plane.ingest import metrics
from control_plane.ingest.service import UnknownDevice, ingest_batch
from protocols.broker_url import BrokerAddress
from protocols.codec import decode, encode
from protocols.errors import ProtocolError
from protocols.messages import CommandResult, JournalAck, JournalBatch, State, Status, Telemetry
from protocols.topics import Channel, all_devices_filter, device_topic, shared_filter

log = logging.getLogger(__name__)

#: Acks are tiny and latency-bound: without this, Nagle and delayed ACKs add ~40 ms per hop.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


class NotConnectedError(ConnectionError):
    """The worker holds no broker connection right now, so nothing can be published."""


@dataclass(frozen=True, kw_only=True)
class IngestSettings:
    """How the worker subscribes and how much it does at once."""

    shared_subscription: bool = True
    partitions: int = 4
    queue_depth: int = 8  # batches parsed and waiting per partition: bounds memory under a flood
    backoff_max: float = 10.0


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
        self._client: aiomqtt.Client | None = None

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish on the live connection (the API's commands go down the ingest connection).

        Raises :class:`NotConnectedError` when there is none, or it failed under the publish.
        """
        client = self._client
        if client is None:
            raise NotConnectedError(f"not connected to the broker {self.broker.url}")
        try:
            await client.publish(topic, payload, qos=qos)
        except aiomqtt.MqttError as err:
            raise NotConnectedError(f"publish to {self.broker.url} failed: {err}") from err

    async def run(self) -> None:
        """Serve forever; each lost connection is logged and retried with jittered backoff."""
        delay = 0.2
        while True:
            try:
                await self._session()
            except* (aiomqtt.MqttError, OSError) as group:
                log.warning(
                    "ingest: broker %s lost or unreachable (%s); retrying",
                    self.broker.url,
                    group.exceptions[0],
                )
            self.connected.clear()
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(self.settings.backoff_max, delay * 2)

    async def _session(self) -> None:
        async with aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            identifier=self.identifier,
            clean_session=True,
            keepalive=15,
            timeout=10,
            tls_context=self.tls_context,
            socket_options=NO_DELAY,
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
            log.info(
                "ingest %s: subscribed to %s on %s",
                self.identifier,
                journal_filter,
                self.broker.url,
            )
            queues: list[asyncio.Queue[tuple[str, JournalBatch]]] = [
                asyncio.Queue(self.settings.queue_depth) for _ in range(self.settings.partitions)
            ]
            self._client = client
            self.connected.set()
            try:
                async with asyncio.TaskGroup() as tasks:
                    for number, queue in enumerate(queues):
                        tasks.create_task(self._partition(client, queue), name=f"ingest-{number}")
                    tasks.create_task(self._receive(client, queues), name="ingest-receive")
            finally:
                self._client = None

    async def _receive(
        self, client: aiomqtt.Client, queues: list[asyncio.Queue[tuple[str, JournalBatch]]]
    ) -> None:
        async for message in client.messages:
            payload = message.payload
            raw = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
            try:
                inbound = decode(str(message.topic), bytes(raw))
            except ProtocolError as err:
                metrics.DROPPED.labels(err.metric_label).inc()
                log.warning("ingest: dropped message: %s", err)
                continue
            device_id, body = inbound.address.device_id, inbound.message
            if isinstance(body, JournalBatch):
                partition = zlib.crc32(device_id.encode()) % len(queues)
                await queues[partition].put((device_id, body))
            elif isinstance(body, Status):
                await self._guard(presence.apply_status(self.engine, device_id, body))
            elif isinstance(body, Telemetry):
                await self._guard(presence.apply_telemetry(self.engine, device_id, body))
            elif isinstance(body, State):
                await self._guard(device_state.apply_state(self.engine, device_id, body))
            elif isinstance(body, CommandResult):
                await self._result(device_id, body)
            else:
                metrics.DROPPED.labels("unexpected_channel").inc()
                log.warning("ingest: %s is not an upstream message; dropped", message.topic)

    async def _guard(self, update: Awaitable[bool]) -> None:
        """Presence updates are best effort: a failure is logged, never fatal."""
        try:
            known = await update
        except Exception:
            metrics.DROPPED.labels("presence_error").inc()
            log.exception("ingest: could not record presence; continuing")
            return
        if known is False:
            metrics.DROPPED.labels("unknown_device").inc()

    async def _result(self, device_id: str, result: CommandResult) -> None:
        """Keep a command's result; one that answers no command of ours is counted and dropped."""
        try:
            recorded = await commands.record_result(self.engine, device_id, result)
        except Exception:
            metrics.DROPPED.labels("store_error").inc()
            log.exception("ingest: could not record the result of command %r", result.id)
            return
        if recorded != "recorded":
            metrics.DROPPED.labels(f"{recorded}_command_result").inc()
            log.warning("ingest: %s result %r from %s dropped", recorded, result.id, device_id)

    async def _partition(
        self, client: aiomqtt.Client, queue: asyncio.Queue[tuple[str, JournalBatch]]
    ) -> None:
        acks: asyncio.Queue[tuple[str, JournalAck]] = asyncio.Queue()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._send_acks(client, acks), name="ingest-acks")
            while True:
                device_id, batch = await queue.get()
                started = time.perf_counter()
                ack = await self._store(device_id, batch)
                if ack is not None:
                    acks.put_nowait((device_id, ack))
                metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    async def _send_acks(
        self, client: aiomqtt.Client, acks: asyncio.Queue[tuple[str, JournalAck]]
    ) -> None:
        """Publish acks in order without holding up the next batch for the broker's PUBACK."""
        while True:
            device_id, ack = await acks.get()
            await client.publish(device_topic(device_id, Channel.JOURNAL_ACK), encode(ack), qos=1)

    async def _store(self, device_id: str, batch: JournalBatch) -> JournalAck | None:
        try:
            outcome = await ingest_batch(
                engine=self.engine,
                device_id=device_id,
                batch=batch,
                now_ms=time.time_ns() // 1_000_000,
            )
        except UnknownDevice as err:
            metrics.DROPPED.labels("unknown_device").inc()
            log.warning("ingest: %s; register it or check its certificate. Batch dropped", err)
            return None
        except Exception:
            metrics.DROPPED.labels("store_error").inc()
            log.exception(
                "ingest: could not store a batch of %s; not acked, the appliance will resend",
                device_id,
            )
            return None
        if outcome.problem is not None:
            log.warning("ingest: device %s: %s", device_id, outcome.problem)
        if outcome.stored:
            self.batches_stored += 1
        return outcome.ack
