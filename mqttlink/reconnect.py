"""Hold one connection for good: run a session; when it ends, back off and run it again.

Why here: the ingest worker, the configuration link, the replicator, the fleet agent, the serial
port reopener and the LLRP reader each wrote this loop out. All must report the loss, forget the
connection and wait with the same jittered :class:`~mqttlink.backoff.Backoff` before retrying.

How it works: :func:`retry_forever` is the loop for any connection (a broker, a serial port, a
reader's TCP socket). Only the errors the caller names in ``retry_on`` are retried, each handed to
``failed`` (health, a log line, a metric); anything else is a defect and propagates. Whatever ended
a session, ``ended`` forgets it. The backoff starts afresh when the session connected long enough
(``backoff.up()`` with ``healthy_s``) or when ``progress`` — a count the session moves when it
gets somewhere: records acked, a port opened — grew during it. :func:`reconnect_forever` is the
same loop for an MQTT broker: it retries broker and socket errors and logs the loss in one shape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

import aiomqtt

from mqttlink.backoff import Backoff

Progress = Callable[[], int]


def _nothing() -> None:
    """No state to forget."""


async def retry_forever(
    session: Callable[[], Awaitable[None]],
    *,
    backoff: Backoff,
    retry_on: tuple[type[Exception], ...],
    failed: Callable[[Exception], None],
    ended: Callable[[], None] = _nothing,
    progress: Progress | None = None,
) -> NoReturn:
    """Run ``session()`` again after every end; returns only by cancellation (or a defect).

    ``failed`` gets the first retried error of a session; ``ended`` runs after every session,
    however it ended (cancelled too), so nothing shows a connection that is gone.
    """
    while True:
        mark = progress() if progress is not None else 0
        try:
            await session()
        except* retry_on as group:
            failed(group.exceptions[0])
        finally:
            if progress is not None and progress() > mark:
                backoff.reset()  # it got somewhere: the next failure is a new outage
            ended()
        await backoff.sleep_next()


async def reconnect_forever(
    session: Callable[[Backoff], Awaitable[None]],
    *,
    backoff: Backoff,
    log: logging.Logger,
    what: str,
    url: str,
    lost: Callable[[], None],
    on_error: Callable[[Exception], None] | None = None,
    progress: Progress | None = None,
    meanwhile: str | None = None,
) -> NoReturn:
    """Run ``session(backoff)`` again after every loss of the broker; returns only by cancellation.

    ``session`` calls ``backoff.up()`` once connected; ``lost`` clears what the caller shows as
    connected; ``on_error`` counts the loss (a metric); ``meanwhile`` tells the reader of the log
    what goes on without the broker ("sales continue offline"). Only broker and socket errors are
    retried: anything else is a defect and propagates.
    """
    suffix = f", {meanwhile}" if meanwhile else ""

    def failed(err: Exception) -> None:
        if on_error is not None:
            on_error(err)
        log.warning("%s: broker %s lost or unreachable (%s); retrying%s", what, url, err, suffix)

    async def attempt() -> None:
        await session(backoff)

    await retry_forever(
        attempt,
        backoff=backoff,
        retry_on=(aiomqtt.MqttError, OSError),
        failed=failed,
        ended=lost,
        progress=progress,
    )
