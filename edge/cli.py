"""The appliance's command line: ``register``, ``agent`` and the bench ``appliance``.

A typer app of the edge alone (no ``control_plane`` import), so an appliance-only install has its
commands; the product's ``storefleet`` entry point mounts these beside the cloud's. Every command
imports its domain lazily so ``--help`` stays quick on a Raspberry Pi.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from edge.enrolment.cli import enrol as enrol_command
from edge.kiosk.register_command import register as register_command

app = typer.Typer(help="storefleet appliance: the register and its fleet agent.")


def refuse(message: str) -> NoReturn:
    """Stop before anything starts with one framed message (exit code 2), no traceback."""
    raise typer.BadParameter(message)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aiosqlite", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


app.command("register")(register_command)  # the appliance's register, first boot included
app.command("enrol")(enrol_command)  # the field tech's enrolment from a terminal


@app.command()
def agent() -> None:
    """Run the fleet agent: identity, the MQTT session, and supervision of the register."""
    refuse("the fleet agent as its own process is being built (issue 10); run `register` for now")


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
