"""The ``storefleet`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from control_plane.operators.cli import app as operators_app
from edge.cli import appliance as appliance_command
from edge.kiosk.register_command import register as register_command
from provisioning.cli import app as provision_app

app = typer.Typer(
    help="storefleet: point of sale at the edge, fleet in the cloud.", no_args_is_help=True
)
app.add_typer(provision_app, name="provision")
app.add_typer(operators_app, name="operators")


def refuse(message: str) -> NoReturn:
    """Stop before anything starts with one framed message (exit code 2), as ``register`` does.

    The message names the setting and the fix; typer draws the frame and no traceback follows.
    """
    raise typer.BadParameter(message)


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
    from control_plane.demo import DemoSettings, run_demo

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


@app.command()
def serve(verbose: bool = False) -> None:
    """Run the control plane (settings from STOREFLEET_CP_* variables, checked before it starts)."""
    from control_plane.settings import SettingsRefused, load_settings
    from control_plane.startup import database_at_start, provisioning_at_start

    _logging(verbose)
    try:
        settings = load_settings()
        provisioning = provisioning_at_start(settings)
        asyncio.run(database_at_start(settings.database_url))
    except SettingsRefused as err:
        refuse(str(err))

    import uvicorn

    from control_plane.app import create_app  # the whole application: only once settings hold

    app = create_app(settings)
    if provisioning.settings is not None:
        app.state.provisioning_settings = provisioning.settings
    else:
        logging.getLogger("control_plane").info(
            "enrolment is off until the CA is configured: %s", provisioning.off_because
        )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")


app.command("appliance")(appliance_command)  # edge/cli.py owns it now (issue 10)
app.command("register")(register_command)  # the appliance's register, first boot included


def main() -> None:
    """Console script entry point."""
    app()


if __name__ == "__main__":
    main()
