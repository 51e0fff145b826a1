"""The register's end of the local socket: heartbeats to the fleet agent, its commands answered.

How it works: :meth:`AgentLink.run` connects to the agent's Unix socket, says ``hello`` and then
sends a ``heartbeat`` every ``interval`` seconds (and at once after :meth:`poke`: the register
became ready, a device changed). Commands the agent passes through are run one at a time by the
register's :class:`~edge.agent.commands.CommandRunner` (the hub's handlers) and answered with a
``result``. A lost or refused connection is retried after the fleet's one backoff
(:func:`mqttlink.reconnect.retry_forever`, short here: the agent may be restarting), and the
register sells on meanwhile — the link never takes the register down.
See :mod:`edge.agent.contract` and ``docs/agent-register-contract.md``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from edge.agent import metrics
from edge.agent.commands import CommandRunner
from edge.agent.contract import (
    CommandReply,
    CommandRequest,
    ContractError,
    Heartbeat,
    Hello,
    decode_line,
    encode_line,
)
from mqttlink.backoff import Backoff
from mqttlink.reconnect import retry_forever
from protocols.messages import Command

log = logging.getLogger(__name__)

FIRST_RETRY_S = 0.05  # the agent restarting is back within a blink; check again soon

Send = Callable[[bytes], Awaitable[None]]


class AgentLink:
    """Keeps the register connected to its agent; run :meth:`run` for the register's life."""

    def __init__(
        self,
        *,
        path: Path,
        hello: Callable[[], Hello],
        heartbeat: Callable[[], Heartbeat],
        commands: Callable[[], CommandRunner | None],
        interval: float = 1.0,
        backoff_max: float = 1.0,
    ) -> None:
        self.path = path
        self._hello = hello
        self._heartbeat = heartbeat
        self._commands = commands  # None until the hub is up: "not available" then
        self.interval = interval
        self.backoff_max = backoff_max
        self.connected = asyncio.Event()
        self.connections = 0  # times the agent's socket answered
        self._poked = asyncio.Event()

    def poke(self) -> None:
        """Send a heartbeat now (the register's health changed)."""
        self._poked.set()

    async def run(self) -> None:
        """Connect, report, answer; reconnect after a pause. Returns only when cancelled."""
        await retry_forever(
            self._session,
            backoff=Backoff.capped(initial=FIRST_RETRY_S, cap=self.backoff_max),
            retry_on=(OSError, asyncio.IncompleteReadError),
            failed=_failed,
            progress=lambda: self.connections,  # connected: the next pause is short again
        )

    async def _session(self) -> None:
        reader, writer = await asyncio.open_unix_connection(self.path)
        self.connections += 1
        try:
            await self._serve(reader, writer)
        finally:
            self.connected.clear()
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lock = asyncio.Lock()  # one line at a time: heartbeats and results interleave whole

        async def send(line: bytes) -> None:
            async with lock:
                writer.write(line)
                await writer.drain()

        await send(encode_line(self._hello()))
        self.connected.set()
        log.info("connected to the fleet agent at %s (pid %d)", self.path, os.getpid())
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._beat(send), name="agent-link-heartbeat")
            tasks.create_task(self._answer(reader, send), name="agent-link-commands")

    async def _beat(self, send: Send) -> None:
        while True:
            self._poked.clear()
            await send(encode_line(self._heartbeat()))
            try:
                async with asyncio.timeout(self.interval):
                    await self._poked.wait()
            except TimeoutError:
                pass

    async def _answer(self, reader: asyncio.StreamReader, send: Send) -> None:
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("the fleet agent closed the connection")
            try:
                message = decode_line(line)
            except ContractError as err:
                metrics.LOCAL_LINES_DROPPED.labels("register").inc()
                log.warning("dropped a line from the fleet agent: %s", err)
                continue
            if not isinstance(message, CommandRequest):
                metrics.LOCAL_LINES_DROPPED.labels("register").inc()
                log.warning(
                    "dropped a %s from the fleet agent: only commands come this way", message.type
                )
                continue
            reply = await self._run(message)
            await send(encode_line(reply))
            self.poke()  # a command may have changed a device

    async def _run(self, request: CommandRequest) -> CommandReply:
        runner = self._commands()
        if runner is None:
            return CommandReply(
                id=request.id, ok=False, error="the register has no peripherals to run it on"
            )
        result = await runner.run(Command(id=request.id, name=request.name, args=request.args))
        return CommandReply(id=result.id, ok=result.ok, result=result.result, error=result.error)


def _failed(err: Exception) -> None:
    """Absent while the agent starts (quiet), or gone mid-connection (worth a line)."""
    if isinstance(err, FileNotFoundError | ConnectionRefusedError):
        log.debug("fleet agent socket not there yet (%s)", err)
    else:
        log.info("fleet agent connection lost (%s); reconnecting", err)
