"""The control plane's command line (``storefleet-cloud``): ``serve``, ``provision``, ``operators``.

The cloud alone: nothing here imports ``edge``, so a control-plane install (``storefleet[cloud]``)
has its commands without the appliance's drivers. The product's ``storefleet`` command
(``storefleet.cli``) mounts these beside the appliance's and adds the demo, which needs both.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NoReturn

import typer

from control_plane.catalog.import_cli import app as catalog_app
from control_plane.ingest.journal_cli import app as journal_app
from control_plane.operators.cli import app as operators_app
from provisioning.cli import app as provision_app

app = typer.Typer(help="storefleet control plane: the fleet in the cloud.", no_args_is_help=True)
app.add_typer(provision_app, name="provision")
app.add_typer(operators_app, name="operators")
app.add_typer(journal_app, name="journal")
app.add_typer(catalog_app, name="catalog")


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
def serve(verbose: bool = False) -> None:
    """Run the control plane (settings from STOREFLEET_CP_* variables, checked before it starts)."""
    from control_plane.customers.settings import load_customer_settings
    from control_plane.notifications.settings import load_notification_settings
    from control_plane.settings import SettingsRefused, load_settings
    from control_plane.startup import database_at_start, provisioning_at_start

    _logging(verbose)
    try:
        settings = load_settings()
        notifications = load_notification_settings()
        customers = load_customer_settings()  # a master key too short: refused here, by name
        provisioning = provisioning_at_start(settings)
        asyncio.run(database_at_start(settings.database_url))
    except SettingsRefused as err:
        refuse(str(err))

    import uvicorn

    from control_plane.app import create_app  # the whole application: only once settings hold

    app = create_app(settings)
    app.state.notification_settings = notifications
    app.state.customer_settings = customers
    if provisioning.settings is not None:
        app.state.provisioning_settings = provisioning.settings
    else:
        logging.getLogger("control_plane").info(
            "enrolment is off until the CA is configured: %s", provisioning.off_because
        )
    # HTTPS when STOREFLEET_CP_TLS_CERT/KEY are set; X-Forwarded-* only from trusted proxies
    uvicorn.run(app, log_level="info", **settings.uvicorn_options())


def main() -> None:
    """Console script entry point."""
    app()


if __name__ == "__main__":
    main()
