"""The register's hardware commands: stock counts, the test page, the drawer — run on its hub.

The fleet agent passes these through the local socket (it has no hardware of its own); the
register runs them with :class:`~edge.agent.commands.CommandRunner` over :func:`hub_handlers`.
:func:`agent_for_hub` puts the same handlers behind an MQTT session in one process, for tests of
the command path that need no second process.

Commands: ``stock_count.start`` {session_id?, location?} → expected on-hand from the ledger;
``stock_count.stop`` {session_id} → stop, commit the variance report to the journal, return it;
``printer.test_page`` {}; ``drawer.open`` {reason, by} (audited in the journal by the hub).
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import Field

from edge.agent.commands import CommandArgs, CommandHandler, CommandRefused, CommandRunner, NoArgs
from edge.agent.session import AgentSettings, FleetAgent
from edge.agent.state import StatePublisher
from edge.peripherals.hub import HubError, PeripheralHub
from edge.peripherals.rfid.count import VarianceReport
from edge.stock.on_hand import JournalSource, OnHandProjection
from protocols.broker_url import BrokerAddress
from protocols.vocabulary import CommandName

#: A result must fit the contract's 64 KiB per message: beyond this many GTINs the result
#: carries only the lines that differ (the full report is in the journal at ``seq``).
MAX_RESULT_LINES = 400

#: What a hub command may refuse with (answered ``ok=False``, not "internal error").
HUB_REFUSALS: tuple[type[Exception], ...] = (HubError, CommandRefused, ValueError)

ExpectedOnHand = Callable[[], Awaitable[Mapping[str, int]]]


class CountStartArgs(CommandArgs):
    """``stock_count.start``: an id the console chose (or one is made), where the count is."""

    session_id: str | None = Field(default=None, min_length=1, max_length=64)
    location: str = Field(default="", max_length=200)


class CountStopArgs(CommandArgs):
    """``stock_count.stop``: which count."""

    session_id: str = Field(min_length=1, max_length=64)


class DrawerOpenArgs(CommandArgs):
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


def hub_handlers(
    hub: PeripheralHub, *, expected_on_hand: ExpectedOnHand
) -> dict[str, CommandHandler]:
    """The hardware commands of one register, by name."""

    async def count_start(args: CountStartArgs) -> dict[str, Any]:
        expected = await expected_on_hand()
        session = hub.start_count(
            expected=expected, session_id=args.session_id, location=args.location
        )
        return {"session_id": session.session_id, "expected_gtins": len(expected)}

    async def count_stop(args: CountStopArgs) -> dict[str, Any]:
        done = await hub.finish_count(args.session_id)
        return report_result(done.seq, done.report)

    async def print_test_page(_args: NoArgs) -> dict[str, Any]:
        return {"job_id": await hub.print_test_page()}

    async def drawer_open(args: DrawerOpenArgs) -> dict[str, Any]:
        opened = await hub.open_drawer(reason=args.reason, by=args.by)
        return {"seq": opened.seq, "job_id": opened.job_id}

    return {
        CommandName.STOCK_COUNT_START: CommandHandler(CountStartArgs, count_start),
        CommandName.STOCK_COUNT_STOP: CommandHandler(CountStopArgs, count_stop),
        CommandName.PRINTER_TEST_PAGE: CommandHandler(NoArgs, print_test_page),
        CommandName.DRAWER_OPEN: CommandHandler(DrawerOpenArgs, drawer_open),
    }


def hub_runner(
    *,
    device_id: str,
    hub: PeripheralHub,
    journal: JournalSource,
    item_gtins: Mapping[str, str] | None = None,
    on_done: Callable[[], None] | None = None,
) -> CommandRunner:
    """The runner of one register's hardware commands; expected on-hand from ``journal``.

    ``item_gtins`` maps the register's item ids to GTINs (``catalog_gtins(catalog)``) for sales
    whose lines carry item ids rather than barcodes.
    """
    projection = OnHandProjection(journal=journal, item_gtins=item_gtins)
    return CommandRunner(
        device_id=device_id,
        handlers=hub_handlers(hub, expected_on_hand=projection.refresh),
        refusals=HUB_REFUSALS,
        on_done=on_done,
    )


def agent_for_hub(
    *,
    device_id: str,
    broker: BrokerAddress,
    hub: PeripheralHub,
    journal: JournalSource,
    item_gtins: Mapping[str, str] | None = None,
    app_release: str = "",
    tls_context: ssl.SSLContext | None = None,
    settings: AgentSettings | None = None,
) -> FleetAgent:
    """An MQTT session answering one hub's commands in this process (tests, tools)."""
    s = settings or AgentSettings()
    state = StatePublisher(
        device_id=device_id,
        health=hub.health,
        app_release=app_release,
        interval_s=s.state_interval_s,
        check_s=s.state_check_s,
    )
    commands = hub_runner(
        device_id=device_id, hub=hub, journal=journal, item_gtins=item_gtins, on_done=state.poke
    )
    return FleetAgent(
        device_id=device_id,
        broker=broker,
        commands=commands,
        state=state,
        tls_context=tls_context,
        settings=s,
    )
