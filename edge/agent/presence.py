"""The appliance's presence (``status``): the agent's to say, because the agent is the appliance.

How it works: every connect of the agent's session registers ``offline`` as its MQTT last will
and then publishes ``online`` (both retained, QoS 1), so the broker itself says ``offline`` when
the agent dies or its link drops, and a clean stop says it before leaving (a clean DISCONNECT
sends no will). The register's replicator carries only the journal: a register that crashes,
restarts or never starts leaves the appliance online — the agent is still there answering
commands — and the retained ``state`` says what is wrong with the register.
``boot_id`` is new with every agent process, so the control plane sees an appliance restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Literal

import aiomqtt

from mqttlink.link import MqttLink
from protocols.codec import encode
from protocols.messages import Status
from protocols.topics import Channel, device_topic

log = logging.getLogger(__name__)

Versions = Callable[[], Mapping[str, str]]

#: How long a clean stop waits to say ``offline`` before leaving it to the broker's last will.
GOODBYE_S = 1.0


class Presence:
    """``sf/v1/d/{device}/status`` for one agent process."""

    def __init__(self, *, device_id: str, versions: Versions) -> None:
        self.topic = device_topic(device_id, Channel.STATUS)
        self.boot_id = uuid.uuid4().hex
        self._versions = versions

    def message(self, state: Literal["online", "offline"]) -> Status:
        """The status as of now."""
        return Status.model_validate(
            {
                "state": state,
                "boot_id": self.boot_id,
                "versions": dict(self._versions()),
                "ts": time.time_ns() // 1_000_000,
            }
        )

    def will(self) -> aiomqtt.Will:
        """The last will to register at connect: the broker's ``offline`` for us."""
        return aiomqtt.Will(self.topic, encode(self.message("offline")), qos=1, retain=True)

    async def online(self, link: MqttLink) -> None:
        """Say ``online`` (retained) on a new connection."""
        await link.publish(self.topic, encode(self.message("online")), qos=1, retain=True)

    async def offline(self, link: MqttLink) -> None:
        """Say ``offline`` on a clean stop; a link already gone leaves it to the last will."""
        try:
            async with asyncio.timeout(GOODBYE_S):
                await link.publish(self.topic, encode(self.message("offline")), qos=1, retain=True)
        except (aiomqtt.MqttError, TimeoutError, OSError) as err:
            log.debug("offline not said (%s): the broker's last will says it", err)
