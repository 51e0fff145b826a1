"""The product's ``storefleet`` command, and the entry points of the one-sided installs.

The cloud (``control_plane.cli``: serve, provision, operators) and the appliance (``edge.cli``:
register, agent, appliance, enrol) each own a typer app that imports nothing of the other.
``storefleet`` mounts the commands of every side this install has, and adds ``demo``, which runs
both. ``storefleet-cloud`` and ``storefleet-appliance`` run one side's app alone; either refuses
with one line naming the extra to install when its side is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from storefleet.release_cli import app as release_app
from storefleet.sides import APPLIANCE, CLOUD, SIDES, Side, installed, refusal

app = typer.Typer(
    help="storefleet: point of sale at the edge, fleet in the cloud.",
    no_args_is_help=True,
    epilog="".join(
        f"{side.what.capitalize()}'s commands are not installed: "
        f"pip install 'storefleet{escape(f'[{side.extra}]')}'. "  # not a rich markup tag
        for side in SIDES
        if side not in installed()
    )
    or None,
)
for _side in installed():
    app.add_typer(_side.app())  # no name: the side's commands sit at the top level
app.add_typer(release_app)  # storefleet release …: needs only the shared packages


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("amqtt", "transitions", "aiosqlite", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def demo(
    stores: Annotated[int, typer.Option(min=1, max=50, help="simulated stores")] = 3,
    rate: Annotated[float, typer.Option(min=0.01, help="sales per second per store")] = 1.0,
    port: Annotated[int, typer.Option(help="console and API port")] = 8080,
    kiosk_base_port: Annotated[int, typer.Option(help="store N's kiosk is on this + N")] = 8100,
    data_dir: Annotated[Path, typer.Option(help="ledgers and the control-plane database")] = Path(
        ".storefleet/demo"
    ),
    broker_url: Annotated[
        str | None, typer.Option(help="mqtt://host:port; default embedded")
    ] = None,
    peripherals: Annotated[bool, typer.Option(help="simulated printer, scanner, RFID")] = True,
    verbose: bool = False,
) -> None:
    """Run a control plane and simulated store appliances; Ctrl-C stops all of it."""
    refused = refusal("storefleet demo", (CLOUD, APPLIANCE))
    if refused is not None:
        raise typer.BadParameter(refused)
    from storefleet.demo import DemoSettings, run_demo

    _logging(verbose)
    settings = DemoSettings(
        stores=stores,
        rate=rate,
        port=port,
        kiosk_base_port=kiosk_base_port,
        data_dir=data_dir,
        broker_url=broker_url,
        peripherals=peripherals,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(settings))
    typer.echo("storefleet demo stopped.")


def _run_side(command: str, side: Side) -> None:
    refused = refusal(command, (side,))
    if refused is not None:
        sys.stderr.write(f"{refused}\n")
        raise SystemExit(2)
    side.app()(prog_name=command)


def main() -> None:
    """Entry point of ``storefleet``: every installed side's commands, and the demo."""
    app()


def cloud() -> None:
    """Entry point of ``storefleet-cloud``: the control plane's commands alone."""
    _run_side("storefleet-cloud", CLOUD)


def appliance() -> None:
    """Entry point of ``storefleet-appliance``: the appliance's commands alone."""
    _run_side("storefleet-appliance", APPLIANCE)


if __name__ == "__main__":
    main()
