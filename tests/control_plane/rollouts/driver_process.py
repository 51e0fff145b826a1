"""A control-plane instance that only drives rollouts, as its own process (to be SIGKILLed).

Run: ``python -m tests.control_plane.rollouts.driver_process DATABASE_URL BROKER_PORT OWNER``.
It publishes desired releases through its own broker connection, as an instance's ingest does,
and drives every rollout it takes the lease of until it is killed.
"""

from __future__ import annotations

import asyncio
import sys

import aiomqtt

from control_plane.db.engine import make_engine
from control_plane.rollouts.driver import DriverSettings, RolloutDriver


class BrokerLink:
    """The instance's broker connection: publish, or ConnectionError as the ingest's does."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client

    async def publish(
        self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False
    ) -> None:
        try:
            await self.client.publish(topic, payload, qos=qos, retain=retain)
        except aiomqtt.MqttError as err:
            raise ConnectionError(str(err)) from err


async def main(database_url: str, broker_port: int, owner: str) -> None:
    engine = make_engine(database_url)
    async with aiomqtt.Client("127.0.0.1", broker_port, identifier=owner) as client:
        driver = RolloutDriver(
            engine=engine,
            publisher=BrokerLink(client),
            base_url="http://cp",
            settings=DriverSettings(tick_s=0.05, lease_s=3.0),
            owner=owner,
        )
        print("driving", flush=True)
        await driver.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
