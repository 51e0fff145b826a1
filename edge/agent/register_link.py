"""The agent's end of the local socket: the register's heartbeats in, pass-through commands out.

How it works: :meth:`RegisterLink.serve` listens on a Unix socket (mode 0600, in a 0700
directory: only the appliance's user may speak for the register). The register connects and
must say ``hello`` first; a newer connection replaces an older one (a restarted register does
not wait for the agent to notice the old one died). Every ``heartbeat`` is kept with the
monotonic time it arrived: the supervisor reads :attr:`last_beat_at` to find a register that
stopped answering, the state publisher reads :attr:`heartbeat` for the peripherals' health.
:meth:`call` sends a ``command`` and waits (bounded) for the ``result`` with its id. A line that
is not a message of the contract is counted and dropped (:mod:`edge.agent.contract`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from pathlib import Path

from edge.agent import metrics
from edge.agent.commands import CommandRefused
from edge.agent.contract import (
    MAX_LINE,
    CommandReply,
    CommandRequest,
    ContractError,
    Heartbeat,
    Hello,
    decode_line,
    encode_line,
)
from protocols.messages import Command, CommandResult

log = logging.getLogger(__name__)


class RegisterLink:
    """The register as the agent sees it through the socket."""

    def __init__(self, *, path: Path) -> None:
        self.path = path
        self.hello: Hello | None = None
        self.heartbeat: Heartbeat | None = None
        self.last_beat_at: float | None = None  # monotonic
        self.beats = 0
        self.changed = asyncio.Event()  # a hello, or a heartbeat whose readiness moved
        self.listening = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: dict[str, asyncio.Future[CommandReply]] = {}
        self._connection = 0

    @property
    def connected(self) -> bool:
        """A register said hello on a connection that is still open."""
        return self._writer is not None and self.hello is not None

    @property
    def ready(self) -> bool:
        """The register's last heartbeat said it can sell."""
        return self.connected and self.heartbeat is not None and self.heartbeat.ready

    def forget(self) -> None:
        """The register process ended: what it said no longer holds."""
        self.hello = None
        self.heartbeat = None
        self.last_beat_at = None
        if self._writer is not None:
            self._writer.close()
        self._writer = None
        self._fail_waiting("the register stopped before it answered")
        self.changed.set()

    async def serve(self) -> None:
        """Listen until cancelled."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket file left by an agent that was killed
        server = await asyncio.start_unix_server(self._connected, path=self.path, limit=MAX_LINE)
        os.chmod(self.path, 0o600)
        self.listening.set()
        log.info("listening for the register on %s", self.path)
        try:
            async with server:
                await server.serve_forever()
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def call(self, command: Command, *, timeout: float) -> CommandResult:
        """Pass ``command`` to the register and return its answer, or :class:`CommandRefused`."""
        writer = self._writer
        if writer is None or self.hello is None:
            raise CommandRefused(f"the register is not running; {command.name} needs it")
        key = f"{command.id}:{uuid.uuid4().hex[:8]}"  # a redelivered id must not cross answers
        waiting: asyncio.Future[CommandReply] = asyncio.get_running_loop().create_future()
        self._waiting[key] = waiting
        try:
            request = CommandRequest(id=key, name=command.name, args=command.args)
            writer.write(encode_line(request))
            await writer.drain()
            async with asyncio.timeout(timeout):
                reply = await waiting
        except TimeoutError as err:
            raise CommandRefused(
                f"the register did not answer {command.name} within {timeout:g} s"
            ) from err
        except (OSError, ContractError) as err:
            raise CommandRefused(f"the register could not be asked: {err}") from err
        finally:
            self._waiting.pop(key, None)
        return CommandResult(id=command.id, ok=reply.ok, result=reply.result, error=reply.error)

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connection += 1
        mine = self._connection
        try:
            first = await self._read(reader)
            if not isinstance(first, Hello):
                log.warning("a register connection did not start with hello; closed")
                return
            if self._writer is not None:
                self._writer.close()  # the newer register wins
                self._fail_waiting("the register reconnected before it answered")
            self._writer, self.hello, self.heartbeat = writer, first, None
            self.last_beat_at = time.monotonic()  # hello counts as the first sign of life
            self.changed.set()
            log.info("register pid %d (release %s) connected", first.pid, first.release or "?")
            while (message := await self._read(reader)) is not None:
                self._take(message)
        except (OSError, asyncio.IncompleteReadError) as err:
            log.info("register connection lost: %s", err)
        finally:
            if self._connection == mine and self._writer is writer:
                self._writer = None
                self._fail_waiting("the register went away before it answered")
                self.changed.set()
            writer.close()

    async def _read(
        self, reader: asyncio.StreamReader
    ) -> Hello | Heartbeat | CommandRequest | CommandReply | None:
        """The next message of the contract; None at the end of the connection."""
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # longer than the limit: the stream cannot be resynchronised
                metrics.LOCAL_LINES_DROPPED.labels("agent").inc()
                log.warning("the register sent a line over %d bytes; closing", MAX_LINE)
                return None
            if not line:
                return None
            try:
                return decode_line(line)
            except ContractError as err:
                metrics.LOCAL_LINES_DROPPED.labels("agent").inc()
                log.warning("dropped a line from the register: %s", err)

    def _take(self, message: Hello | Heartbeat | CommandRequest | CommandReply) -> None:
        if isinstance(message, Heartbeat):
            was_ready = self.ready
            self.heartbeat, self.last_beat_at = message, time.monotonic()
            self.beats += 1
            if self.ready != was_ready:
                self.changed.set()
        elif isinstance(message, CommandReply):
            waiting = self._waiting.get(message.id)
            if waiting is not None and not waiting.done():
                waiting.set_result(message)
        else:
            metrics.LOCAL_LINES_DROPPED.labels("agent").inc()
            log.warning("dropped a %s from the register: not its to send", message.type)

    def _fail_waiting(self, why: str) -> None:
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(CommandRefused(why))
