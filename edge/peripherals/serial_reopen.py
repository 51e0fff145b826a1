"""Keeping a serial device's port open across cable pulls, for every serial driver alike.

A USB-serial scanner or reader disappears when its cable is pulled and comes back under the same
path; the driver's session ends with an OS or pyserial error. This loop marks the device
unavailable, waits with the fleet's one backoff (:func:`mqttlink.reconnect.retry_forever`: full
jitter, started afresh once a session got going) and reopens, forever, so a register never needs a
restart for a cable.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import NoReturn

import serial

from edge.peripherals.errors import DeviceUnavailableError
from edge.peripherals.health import DeviceHealth
from mqttlink.backoff import Backoff
from mqttlink.reconnect import retry_forever


async def keep_port_open(
    session: Callable[[], Awaitable[None]],
    *,
    health: DeviceHealth,
    hint: str,
    sessions: Callable[[], int],
    backoff_base_s: float,
    backoff_cap_s: float,
    rng: random.Random,
) -> NoReturn:
    """Run ``session`` until cancelled, reopening after every disconnect.

    ``sessions`` counts the sessions that got going: one that did starts the backoff afresh.
    """

    def failed(err: Exception) -> None:
        health.failed(str(err) or type(err).__name__, connected=False, hint=hint)
        health.count("disconnect")

    await retry_forever(
        session,
        backoff=Backoff.capped(initial=backoff_base_s, cap=backoff_cap_s, uniform=rng.uniform),
        retry_on=(OSError, serial.SerialException, DeviceUnavailableError),
        failed=failed,
        progress=sessions,
    )
