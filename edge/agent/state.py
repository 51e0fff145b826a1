"""The retained ``state`` message: what the appliance runs and how its peripherals are.

How it works: :class:`StatePublisher` looks at the hub's health every ``check_s`` and publishes
``sf.state`` (retained, QoS 1) when what an operator cares about changed — a device connected or
lost, an error set or cleared, paper near end — and anyway every ``interval_s`` so the console's
"last seen" stays fresh. ``last_seen`` and counters move with every tag read and are left out of
the comparison, or an RFID reader would publish many times a second. Retained, so the console
(and a reconnecting control plane) reads the current state without asking; ``poke()`` makes a
command's effect visible at once instead of at the next check.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from edge.agent import metrics
from mqttlink.link import MqttLink
from protocols.codec import encode
from protocols.messages import State
from protocols.topics import Channel, device_topic

log = logging.getLogger(__name__)

Health = Callable[[], Mapping[str, Mapping[str, Any]]]


def significant(peripherals: Mapping[str, Mapping[str, Any]]) -> str:
    """The part of the health an operator acts on, as a comparable string."""
    view = {
        name: [h.get("connected"), h.get("error"), h.get("detail")]
        for name, h in sorted(peripherals.items())
    }
    return json.dumps(view, sort_keys=True, default=str)


class StatePublisher:
    """Publishes ``sf/v1/d/{device}/state``; run :meth:`run` inside a connected session."""

    def __init__(
        self,
        *,
        device_id: str,
        health: Health,
        app_release: str = "",
        config_version: int = 0,
        slot: str = "",
        interval_s: float = 60.0,
        check_s: float = 1.0,
    ) -> None:
        self.device_id = device_id
        self.topic = device_topic(device_id, Channel.STATE)
        self.app_release = app_release
        self.config_version = config_version
        self.config_hashes: dict[str, str] = {}  # of the applied configuration, per key
        self.slot = slot
        self.published = 0
        self._health = health
        self._interval_s = interval_s
        self._check_s = check_s
        self._poked = asyncio.Event()

    def poke(self) -> None:
        """Look at the health now (after a command that changes a device)."""
        self._poked.set()

    def state(self) -> State:
        """The message as of now."""
        peripherals = {name: dict(h) for name, h in self._health().items()}
        return State(
            config_version=self.config_version,
            app_release=self.app_release,
            slot=self.slot,
            peripherals=peripherals,
            config_hashes=self.config_hashes,
        )

    async def run(self, link: MqttLink) -> None:
        """Publish on connect, on change, every ``interval_s``; returns only by cancellation."""
        last_key: str | None = None
        last_at = 0.0
        while True:
            self._poked.clear()
            message = self.state()
            key = f"{message.config_version} {significant(message.peripherals)}"
            now = time.monotonic()
            why = (
                "connect"
                if last_key is None
                else "change"
                if key != last_key
                else "interval"
                if now - last_at >= self._interval_s
                else None
            )
            if why is not None:
                await link.publish(self.topic, encode(message), qos=1, retain=True)
                self.published += 1
                metrics.STATE_PUBLISHED.labels(self.device_id, why).inc()
                log.debug("device %s: state published (%s)", self.device_id, why)
                last_key, last_at = key, now
            try:
                async with asyncio.timeout(self._check_s):
                    await self._poked.wait()
            except TimeoutError:
                pass
