"""The appliance's command line: ``register``, ``agent`` and the bench ``appliance``.

A typer app of the edge alone (no ``control_plane`` import), so an appliance-only install has its
commands; the product's ``storefleet`` entry point mounts these beside the cloud's. Every command
imports its domain lazily so ``--help`` stays quick on a Raspberry Pi.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import typer.core

from edge.enrolment.cli import enrol as enrol_command

app = typer.Typer(help="storefleet appliance: the register and its fleet agent.")

#: The register asks its supervisor for a fresh start (it enrolled); see edge.register.compose.
EXIT_RESTART = 75


def refuse(message: str) -> NoReturn:
    """Stop before anything starts with one framed message (exit code 2), no traceback."""
    raise typer.BadParameter(message)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("transitions",):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _RegisterHelp(typer.core.TyperCommand):
    """``register --help`` lists every setting, read from the settings model only when asked."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from edge.register.settings_doc import help_epilog

        self.epilog = help_epilog()
        super().format_help(ctx, formatter)


class _AgentHelp(typer.core.TyperCommand):
    """``agent --help`` lists every setting, read from the settings model only when asked."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from edge.agent.settings_doc import help_epilog

        self.epilog = help_epilog()
        super().format_help(ctx, formatter)


@app.command(cls=_RegisterHelp)
def register(
    settings: Annotated[
        Path | None,
        typer.Option(
            "--settings",
            envvar="STOREFLEET_EDGE_SETTINGS_FILE",
            help="the register's settings file (TOML or JSON); the environment overrides it",
        ),
    ] = None,
) -> None:
    """Run the register (ledger, replication, checkout, kiosk, peripherals) from its settings."""
    from edge.register.settings import SettingsRefused, load_register_settings

    try:
        loaded = load_register_settings(settings)
    except SettingsRefused as err:
        refuse(str(err))
    from edge.register.structured_log import configure_logging

    configure_logging(loaded.log.format, loaded.log.level)
    try:
        asyncio.run(_run_register(loaded))
    except SettingsRefused as err:
        refuse(str(err))
    except RestartNeededError:
        raise typer.Exit(EXIT_RESTART) from None
    typer.echo("register stopped.", err=True)


async def _run_register(settings: Any) -> None:
    """Until SIGINT/SIGTERM: then the register stops in order and says "offline"."""
    from edge.register.compose import RestartNeeded, run_register
    from edge.register.settings import SettingsRefused

    stop = _stop_on_signals()
    try:
        await run_register(settings, stop=stop)
    except* SettingsRefused as group:
        raise group.exceptions[0] from None
    except* RestartNeeded:
        raise RestartNeededError from None


class RestartNeededError(Exception):
    """The register enrolled and exits for its supervisor to start it again (exit 75)."""


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


app.command("enrol")(enrol_command)  # the field tech's enrolment from a terminal


@app.command(cls=_AgentHelp)
def agent(
    settings: Annotated[
        Path | None,
        typer.Option(
            "--settings",
            envvar="STOREFLEET_AGENT_SETTINGS_FILE",
            help="the agent's settings file (TOML or JSON); STOREFLEET_AGENT_* override it",
        ),
    ] = None,
    verbose: bool = False,
) -> None:
    """Run the fleet agent: identity, the MQTT session, and supervision of the register."""
    from edge.agent.settings import AgentSettingsRefused, load_agent_settings

    try:
        loaded = load_agent_settings(settings, environ=os.environ)
    except AgentSettingsRefused as err:
        refuse(str(err))
    _logging(verbose)
    from edge.agent.process import run_agent

    async def main() -> None:
        await run_agent(loaded, stop=_stop_on_signals())

    asyncio.run(main())
    typer.echo("fleet agent stopped.", err=True)


#: The settings ``appliance`` takes as options, so a refusal can name the option.
APPLIANCE_OPTIONS = {
    "device_id": "--device-id",
    "ledger_path": "--ledger",
    "broker_url": "--broker-url",
}


@app.command()
def appliance(
    device_id: Annotated[str, typer.Option(help="this appliance's device id")],
    ledger: Annotated[Path, typer.Option(help="path of the SQLite ledger")],
    broker_url: Annotated[str, typer.Option(help="mqtt://host:port")] = "mqtt://127.0.0.1:1883",
    rate: Annotated[float, typer.Option(help="simulated sales per second; 0 = none")] = 0.0,
    count: Annotated[int | None, typer.Option(help="stop ringing after this many sales")] = None,
    print_commits: Annotated[
        bool, typer.Option(help="print each sale id once its commit has returned")
    ] = False,
    ack_timeout: Annotated[
        float, typer.Option(help="seconds before unacked records are resent")
    ] = 5.0,
    metrics_port: Annotated[
        int, typer.Option(help="serve Prometheus metrics (backlog, lag) on 127.0.0.1; 0 = off")
    ] = 0,
    verbose: bool = False,
) -> None:
    """Run one bench appliance: ledger, replication and optionally a simulated register."""
    from pydantic import ValidationError

    from edge.appliance import run_appliance
    from edge.ledger import CommittedSale
    from edge.replication.replicator import ReplicationSettings
    from edge.settings import EdgeSettings, describe
    from edge.simulated_register import RingSettings

    _logging(verbose)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    try:
        settings = EdgeSettings(device_id=device_id, ledger_path=ledger, broker_url=broker_url)
    except ValidationError as err:
        fields = {str(error["loc"][0]) for error in err.errors() if error["loc"]}
        given = [option for field, option in APPLIANCE_OPTIONS.items() if field in fields]
        refuse(describe(err, EdgeSettings) + (f" (here: {', '.join(given)})" if given else ""))
    ring = None
    if rate > 0 or count:
        ring = RingSettings(rate=rate, count=count)

    def announce(committed: CommittedSale) -> None:
        sys.stdout.write(f"committed {committed.sale_id} {committed.seq}\n")
        sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_appliance(
                settings,
                ring=ring,
                replication=ReplicationSettings(ack_timeout=ack_timeout),
                on_commit=announce if print_commits else None,
            )
        )


def main() -> None:
    """Console script entry point of an appliance-only install."""
    app()


if __name__ == "__main__":
    main()
