"""Remote commands: decoded, validated, run by a handler or passed on, answered with a result.

How it works: :meth:`CommandRunner.handle` takes the raw payload from ``sf/v1/d/{device}/cmd``
and always returns a :class:`CommandResult` to publish on ``cmd/result`` — it never raises.

* The payload is decoded with the contract's codec; a message that is not an ``sf.cmd`` is
  counted (``storefleet_agent_commands_rejected``), logged and answered ``ok=False`` with the
  id when one can be read from it (else ``""``), so the sender is not left waiting.
* Results are remembered by command id: a QoS 1 redelivery of the same command gets the same
  answer again instead of opening the drawer twice.
* :meth:`CommandRunner.run` picks a handler from the runner's table by the command's name; its
  arguments are validated by the handler's pydantic model (unknown fields refused), so a typo
  fails loudly, not half-runs. A name the table lacks goes to ``forward`` when there is one
  (the agent passes the register's commands through the local socket), else it is refused as
  ``unknown_command``.
* A domain refusal (one of ``refusals``: no drawer configured, no such count, the register is
  not running) is ``ok=False`` with the reason; a bug is logged with its traceback and
  answered ``internal error``.

The same runner serves both ends: the agent's own commands (:mod:`edge.agent.own_commands`)
with the register as ``forward``, and the register's hardware commands
(:mod:`edge.register.hub_commands`) behind the socket.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from edge.agent import metrics
from protocols.codec import decode
from protocols.errors import ProtocolError
from protocols.messages import Command, CommandResult

log = logging.getLogger(__name__)


class CommandArgs(BaseModel):
    """Base of every command's arguments: frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoArgs(CommandArgs):
    """A command without arguments."""


class CommandRefused(Exception):  # noqa: N818 - the command was refused, not a crash
    """A handler's domain refusal, answered ``ok=False`` with this message."""


@dataclass(frozen=True, slots=True)
class CommandHandler:
    """One command: its argument model and what runs it."""

    args: type[CommandArgs]
    run: Callable[[Any], Awaitable[dict[str, Any]]]


Forward = Callable[[Command], Awaitable[CommandResult]]


class CommandRunner:
    """Runs the commands of one device: its own handlers, the rest through ``forward``."""

    def __init__(
        self,
        *,
        device_id: str,
        handlers: Mapping[str, CommandHandler],
        forward: Forward | None = None,
        refusals: tuple[type[Exception], ...] = (CommandRefused, ValueError),
        on_done: Callable[[], None] | None = None,
        remember: int = 256,
    ) -> None:
        self.device_id = device_id
        self.handlers = dict(handlers)
        self.forward = forward
        self.refusals = refusals
        self._on_done = on_done
        self._remember = remember
        self._results: OrderedDict[str, CommandResult] = OrderedDict()

    async def handle(self, payload: bytes, *, topic: str) -> CommandResult:
        """The result to publish for one inbound message; never raises."""
        try:
            command = decode(topic, payload).message
        except ProtocolError as err:
            return self._reject(err.metric_label, str(err), command_id=_id_of(payload))
        if not isinstance(command, Command):
            return self._reject("wrong_schema", f"not a command: {topic}", command_id="")
        if command.id in self._results:
            metrics.COMMANDS.labels(self.device_id, command.name, "duplicate").inc()
            return self._results[command.id]
        result = await self.run(command)
        self._results[command.id] = result
        while len(self._results) > self._remember:
            self._results.popitem(last=False)
        if self._on_done is not None:
            self._on_done()
        return result

    async def run(self, command: Command) -> CommandResult:
        """Run one decoded command; never raises."""
        entry = self.handlers.get(command.name)
        if entry is None and self.forward is not None:
            return await self._forward(command)
        if entry is None:
            return self._reject(
                "unknown_command", f"unknown command {command.name!r}", command_id=command.id
            )
        try:
            args = entry.args.model_validate(command.args)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "args"
            return self._reject(
                "invalid_args",
                f"{command.name}: {where}: {first['msg']}",
                command_id=command.id,
            )
        try:
            result = await entry.run(args)
        except self.refusals as err:
            metrics.COMMANDS.labels(self.device_id, command.name, "failed").inc()
            log.warning("device %s: command %s refused: %s", self.device_id, command.name, err)
            return CommandResult(id=command.id, ok=False, error=str(err))
        except Exception as err:  # a bug in a handler must not stop the command loop
            metrics.COMMANDS.labels(self.device_id, command.name, "failed").inc()
            log.exception("device %s: command %s failed", self.device_id, command.name)
            return CommandResult(id=command.id, ok=False, error=f"internal error: {err}")
        metrics.COMMANDS.labels(self.device_id, command.name, "ok").inc()
        log.info("device %s: command %s (%s) done", self.device_id, command.name, command.id)
        return CommandResult(id=command.id, ok=True, result=result)

    async def _forward(self, command: Command) -> CommandResult:
        if self.forward is None:
            raise RuntimeError("a register command forwarded with no register link")
        try:
            result = await self.forward(command)
        except self.refusals as err:
            metrics.COMMANDS.labels(self.device_id, command.name, "failed").inc()
            log.warning(
                "device %s: command %s not passed on: %s", self.device_id, command.name, err
            )
            return CommandResult(id=command.id, ok=False, error=str(err))
        outcome = "ok" if result.ok else "failed"
        metrics.COMMANDS.labels(self.device_id, command.name, outcome).inc()
        return result

    def _reject(self, reason: str, error: str, *, command_id: str) -> CommandResult:
        metrics.COMMANDS_REJECTED.labels(self.device_id, reason).inc()
        log.warning("device %s: command rejected (%s): %s", self.device_id, reason, error)
        return CommandResult(id=command_id, ok=False, error=error)


def _id_of(payload: bytes) -> str:
    """The ``id`` of a command we cannot otherwise read, so its sender can match the refusal."""
    try:
        raw = json.loads(payload)
    except ValueError:
        return ""
    value = raw.get("id") if isinstance(raw, dict) else None
    return value[:64] if isinstance(value, str) else ""
