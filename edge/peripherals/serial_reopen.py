"""Keeping a serial device's port open across cable pulls, for every serial driver alike.

A USB-serial scanner or reader disappears when its cable is pulled and comes back under the same
path; the driver's session ends with an OS or pyserial error. This loop marks the device
unavailable, waits with the fleet's one backoff (:class:`mqttlink.backoff.Backoff`: full jitter,
started afresh once a session got going) and reopens, forever, so a register never needs a
restart for a cable.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import serial

from edge.peripherals.errors import DeviceUnavailableError
from edge.peripherals.health import DeviceHealth
from mqttlink.backoff import Backoff


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
    backoff = Backoff(
        initial=min(backoff_base_s, backoff_cap_s), cap=backoff_cap_s, uniform=rng.uniform
    )
    while True:
        before = sessions()
        try:
            await session()
        except (OSError, serial.SerialException, DeviceUnavailableError) as err:
            health.failed(str(err) or type(err).__name__, connected=False, hint=hint)
            health.count("disconnect")
        if sessions() > before:  # it worked for a while: start the backoff afresh
            backoff.reset()
        await backoff.sleep_next()
