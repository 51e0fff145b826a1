"""Keeping a serial device's port open across cable pulls, for every serial driver alike.

A USB-serial scanner or reader disappears when its cable is pulled and comes back under the same
path; the driver's session ends with an OS or pyserial error. This loop marks the device
unavailable, waits with jittered exponential backoff (reset once a session got going) and
reopens, forever, so a register never needs a restart for a cable.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import serial

from edge.peripherals.errors import DeviceUnavailableError
from edge.peripherals.health import DeviceHealth


async def keep_port_open(
    session: Callable[[], Awaitable[None]],
    *,
    health: DeviceHealth,
    hint: str,
    sessions: Callable[[], int],
    backoff_base_s: float,
    backoff_cap_s: float,
    rng: random.Random,
) -> None:
    """Run ``session`` until cancelled, reopening after every disconnect."""
    attempt = 0
    while True:
        before = sessions()
        try:
            await session()
        except (OSError, serial.SerialException, DeviceUnavailableError) as err:
            health.failed(str(err) or type(err).__name__, connected=False, hint=hint)
            health.count("disconnect")
        if sessions() > before:  # it worked for a while: start the backoff afresh
            attempt = 0
        delay = min(backoff_base_s * 2**attempt, backoff_cap_s)
        attempt += 1
        await asyncio.sleep(delay * rng.uniform(0.5, 1.0))
