"""Waiting for a device state in tests without asserting on time."""

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], bool]) -> None:
    """Yield to the loop until ``predicate()`` holds.

    State changes come from reads, reconnects and health updates alike; polling them is simplest,
    and each test's guard timeout bounds it. No assertion depends on how long it took.
    """
    while not predicate():  # noqa: ASYNC110
        await asyncio.sleep(0.005)
