"""Remote commands for the register's hardware: validated, run on the hub, answered with a result.

How it works: :meth:`CommandRunner.handle` takes the raw payload from ``sf/v1/d/{device}/cmd``
and always returns a :class:`CommandResult` to publish on ``cmd/result`` — it never raises.

* The payload is decoded with the contract's codec; a message that is not an ``sf.cmd`` is
  counted (``storefleet_agent_commands_rejected``), logged and answered ``ok=False`` with the
  id when one can be read from it (else ``""``), so the sender is not left waiting.
* The command name picks a handler from :data:`HANDLERS`; its arguments are validated by the
  handler's pydantic model (unknown fields refused), so a typo fails loudly, not half-runs.
* A domain refusal (no drawer configured, no such count) is ``ok=False`` with the reason; a bug
  is logged with its traceback and answered ``internal error``.
* Results are remembered by command id: a QoS 1 redelivery of the same command gets the same
  answer again instead of opening the drawer twice.

Commands: ``stock_count.start`` {session_id?, location?} → expected on-hand from the ledger;
``stock_count.stop`` {session_id} → stop, commit the variance report to the journal, return it;
``printer.test_page`` {}; ``drawer.open`` {reason, by} (audited in the journal by the hub).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.agent import metrics
from edge.peripherals.hub import HubError, PeripheralHub
from edge.peripherals.rfid.count import VarianceReport
from protocols.codec import decode
from protocols.errors import ProtocolError
from protocols.messages import Command, CommandResult

log = logging.getLogger(__name__)

#: A result must fit the contract's 64 KiB per message: beyond this many GTINs the result
#: carries only the lines that differ (the full report is in the journal at ``seq``).
MAX_RESULT_LINES = 400

ExpectedOnHand = Callable[[], Awaitable[Mapping[str, int]]]


class _Args(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CountStartArgs(_Args):
    """``stock_count.start``: an id the console chose (or one is made), where the count is."""

    session_id: str | None = Field(default=None, min_length=1, max_length=64)
    location: str = Field(default="", max_length=200)


class CountStopArgs(_Args):
    """``stock_count.stop``: which count."""

    session_id: str = Field(min_length=1, max_length=64)


class NoArgs(_Args):
    """A command without arguments."""


class DrawerOpenArgs(_Args):
    """``drawer.open``: why, and who asked (an operator id in the console)."""

    reason: str = Field(min_length=1, max_length=200)
    by: str = Field(min_length=1, max_length=100)


def report_result(seq: int, report: VarianceReport) -> dict[str, Any]:
    """The count result for ``cmd/result``: the report, trimmed to variances when it is large."""
    body = report.to_body()
    if len(report.lines) > MAX_RESULT_LINES:
        differing = [line for line in report.lines if line.variance]
        kept = differing[:MAX_RESULT_LINES]
        body["lines"] = [
            {"gtin": x.gtin, "expected": x.expected, "counted": x.counted, "variance": x.variance}
            for x in kept
        ]
        body["lines_omitted"] = len(report.lines) - len(kept)
    return {"seq": seq, "report": body}


class CommandRunner:
    """Runs the hardware commands of one device against its hub."""

    def __init__(
        self,
        *,
        device_id: str,
        hub: PeripheralHub,
        expected_on_hand: ExpectedOnHand,
        on_done: Callable[[], None] | None = None,
        remember: int = 256,
    ) -> None:
        self.device_id = device_id
        self.hub = hub
        self._expected_on_hand = expected_on_hand
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
        result = await self._run(command)
        self._results[command.id] = result
        while len(self._results) > self._remember:
            self._results.popitem(last=False)
        if self._on_done is not None:
            self._on_done()
        return result

    async def _run(self, command: Command) -> CommandResult:
        entry = HANDLERS.get(command.name)
        if entry is None:
            return self._reject(
                "unknown_command", f"unknown command {command.name!r}", command_id=command.id
            )
        model, handler = entry
        try:
            args = model.model_validate(command.args)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "args"
            return self._reject(
                "invalid_args",
                f"{command.name}: {where}: {first['msg']}",
                command_id=command.id,
            )
        try:
            result = await handler(self, args)
        except (HubError, ValueError) as err:
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

    def _reject(self, reason: str, error: str, *, command_id: str) -> CommandResult:
        metrics.COMMANDS_REJECTED.labels(self.device_id, reason).inc()
        log.warning("device %s: command rejected (%s): %s", self.device_id, reason, error)
        return CommandResult(id=command_id, ok=False, error=error)

    # -- handlers --------------------------------------------------------------------------------

    async def _count_start(self, args: CountStartArgs) -> dict[str, Any]:
        expected = await self._expected_on_hand()
        session = self.hub.start_count(
            expected=expected, session_id=args.session_id, location=args.location
        )
        return {"session_id": session.session_id, "expected_gtins": len(expected)}

    async def _count_stop(self, args: CountStopArgs) -> dict[str, Any]:
        done = await self.hub.finish_count(args.session_id)
        return report_result(done.seq, done.report)

    async def _test_page(self, _args: NoArgs) -> dict[str, Any]:
        return {"job_id": await self.hub.print_test_page()}

    async def _drawer_open(self, args: DrawerOpenArgs) -> dict[str, Any]:
        opened = await self.hub.open_drawer(reason=args.reason, by=args.by)
        return {"seq": opened.seq, "job_id": opened.job_id}


Handler = Callable[[CommandRunner, Any], Awaitable[dict[str, Any]]]

HANDLERS: dict[str, tuple[type[_Args], Handler]] = {
    "stock_count.start": (CountStartArgs, CommandRunner._count_start),
    "stock_count.stop": (CountStopArgs, CommandRunner._count_stop),
    "printer.test_page": (NoArgs, CommandRunner._test_page),
    "drawer.open": (DrawerOpenArgs, CommandRunner._drawer_open),
}


def _id_of(payload: bytes) -> str:
    """The ``id`` of a command we cannot otherwise read, so its sender can match the refusal."""
    try:
        raw = json.loads(payload)
    except ValueError:
        return ""
    value = raw.get("id") if isinstance(raw, dict) else None
    return value[:64] if isinstance(value, str) else ""
