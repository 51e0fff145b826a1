"""The ingest connection's inbox: bounded in messages and in bytes, sizes checked on arrival.

Why: the MQTT client acknowledges a QoS 1 message as soon as it is read and queues it for the
worker; its own queue is unbounded, so a publisher faster than the database grows the control
plane without limit (a flood of 4,200 malformed messages once took it from 115 to 616 MB). This
queue is the one the client puts into (aiomqtt's ``queue_type``):

* a payload larger than its channel allows (``protocols.codec.LIMITS``) is dropped on arrival,
  before it is queued or parsed;
* when the inbox already holds ``maxsize`` messages or ``max_bytes`` of payload, the newcomer is
  shed and counted (``overloaded``). Nothing is lost for good: an appliance resends every journal
  batch until it is acked, and a device publishes its state and status again.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import sys
from typing import ClassVar

import aiomqtt

from control_plane.ingest.drops import DropLog
from protocols.codec import DEFAULT_LIMIT, LIMITS
from protocols.errors import PayloadTooLarge, UnknownTopic
from protocols.topics import parse_topic


def payload_size(payload: object) -> int:
    """Bytes of a received payload (paho always hands bytes; the rest is defensive)."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return len(payload)
    return len(str(payload))


def size_limit(topic: str) -> int:
    """The largest payload ``topic``'s channel takes; the default for a topic we cannot parse."""
    try:
        return LIMITS.get(parse_topic(topic).channel, DEFAULT_LIMIT)
    except UnknownTopic:
        return DEFAULT_LIMIT


class Inbox(asyncio.Queue[aiomqtt.Message]):
    """A queue that drops instead of growing; see the module docstring. Use :func:`inbox_type`."""

    max_bytes: ClassVar[int] = 32 * 1024 * 1024
    drops: ClassVar[DropLog]

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.bytes = 0  # payload bytes waiting

    def put_nowait(self, item: aiomqtt.Message) -> None:
        """Queue ``item`` unless it is too large or the inbox is full; never raises QueueFull."""
        topic = str(item.topic)
        size = payload_size(item.payload)
        limit = size_limit(topic)
        if size > limit:
            err = PayloadTooLarge(size, limit, topic=topic)
            self.drops.drop(err.metric_label, f"{err}; dropped unread")
            return
        if self.full() or self.bytes + size > self.max_bytes:
            self.drops.drop(
                "overloaded",
                f"the inbox holds {self.qsize()} messages ({self.bytes // 1024} KiB) waiting for "
                f"the database; shed a message on {topic!r} (a journal batch is resent by its "
                "appliance). If this lasts, add ingest instances or look at the database",
            )
            return
        super().put_nowait(item)

    def _put(self, item: aiomqtt.Message) -> None:
        self.bytes += payload_size(item.payload)
        super()._put(item)

    def _get(self) -> aiomqtt.Message:
        item = super()._get()
        self.bytes -= payload_size(item.payload)
        return item


class ByteBudget:
    """Bytes of parsed journal batches waiting for their partition: ``acquire`` waits for room.

    The inbox bounds payloads before parsing; this bounds them after (a parsed batch is several
    times its payload), so the worker's memory has a ceiling whatever the database's pace. A
    batch larger than the whole budget still passes, alone.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._room = asyncio.Condition()

    async def acquire(self, size: int) -> int:
        """Wait until ``size`` bytes fit; returns the amount to :meth:`release` later."""
        size = min(size, self.limit)
        async with self._room:
            await self._room.wait_for(lambda: self.used + size <= self.limit)
            self.used += size
        return size

    async def release(self, size: int) -> None:
        """Give back what :meth:`acquire` returned."""
        async with self._room:
            self.used -= size
            self._room.notify_all()


def release_heap() -> None:
    """Hand memory freed after a flood back to the OS (glibc's ``malloc_trim``; else nothing).

    Payloads of a few MB are freed as soon as they are dropped, but glibc keeps the pages for the
    next allocation; without this the process stays at its flood peak long after it ended.
    """
    gc.collect()
    if not sys.platform.startswith("linux"):
        return
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl and other libcs: no such library or function
        return
    trim(0)


def inbox_type(*, max_bytes: int, drops: DropLog) -> type[Inbox]:
    """An :class:`Inbox` class bound to one worker's byte budget and drop log.

    aiomqtt builds its queue itself from a class and ``maxsize``, so the rest travels on the class.
    """

    class WorkerInbox(Inbox):
        pass

    WorkerInbox.max_bytes = max_bytes
    WorkerInbox.drops = drops
    return WorkerInbox
