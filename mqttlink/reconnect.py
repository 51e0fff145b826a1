"""Hold one broker connection for good: run a session; when it is lost, back off and run it again.

Why here: the ingest worker and the configuration link each wrote this loop out; both must log the
loss once, forget the connection (``lost``) and wait with the same jittered backoff before retrying.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

import aiomqtt

from mqttlink.backoff import Backoff


async def reconnect_forever(
    session: Callable[[Backoff], Awaitable[None]],
    *,
    backoff: Backoff,
    log: logging.Logger,
    what: str,
    url: str,
    lost: Callable[[], None],
) -> NoReturn:
    """Run ``session(backoff)`` again after every loss; returns only by cancellation.

    ``session`` calls ``backoff.up()`` once connected; ``lost`` clears what the caller shows as
    connected. Only broker and socket errors are retried: anything else is a defect and propagates.
    """
    while True:
        try:
            await session(backoff)
        except* (aiomqtt.MqttError, OSError) as group:
            log.warning(
                "%s: broker %s lost or unreachable (%s); retrying", what, url, group.exceptions[0]
            )
        lost()
        await backoff.sleep_next()
