"""The agent's ``events`` outbox: what happened to the appliance, published once connected.

How it works: :meth:`EventOutbox.emit` puts an ``sf.event`` in a bounded queue from anywhere
(the supervisor, a command) without waiting; :meth:`EventOutbox.run` publishes them in order at
QoS 1 inside a connected session. An event is removed only after its PUBACK, so one that was
being published when the broker went away goes out again on the next session (at least once;
events are facts with a timestamp, so a duplicate is harmless). When the appliance is offline
for long, the oldest events give way to the newest (``storefleet_agent_events_dropped``): the
latest crash loop matters more than the first of a hundred.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

from edge.agent import metrics
from mqttlink.link import MqttLink
from protocols.codec import encode
from protocols.messages import Event
from protocols.topics import Channel, device_topic

log = logging.getLogger(__name__)


class EventOutbox:
    """Events of one device, waiting for the broker."""

    def __init__(self, *, device_id: str, keep: int = 100) -> None:
        self.device_id = device_id
        self._pending: collections.deque[Event] = collections.deque(maxlen=keep)
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._pending)

    def emit(self, kind: str, body: dict[str, Any]) -> None:
        """Queue an event now; it is published when a session is up."""
        if len(self._pending) == self._pending.maxlen:
            metrics.EVENTS_DROPPED.labels(self.device_id).inc()
        self._pending.append(Event(kind=kind, ts=time.time_ns() // 1_000_000, body=body))
        self._wake.set()

    async def run(self, link: MqttLink) -> None:
        """Publish pending events in order until cancelled (or the link fails)."""
        topic = device_topic(self.device_id, Channel.EVENTS)
        while True:
            self._wake.clear()
            while self._pending:
                event = self._pending[0]
                await link.publish(topic, encode(event), qos=1)
                if self._pending and self._pending[0] is event:
                    self._pending.popleft()
                metrics.EVENTS_PUBLISHED.labels(self.device_id, event.kind).inc()
                log.info("device %s: event %s published", self.device_id, event.kind)
            await self._wake.wait()
