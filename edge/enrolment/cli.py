"""``enrol``: the field tech's command for what the first-boot screen does with a scanned QR.

It lives on the appliance's side (mounted by ``edge.cli``'s app, so ``storefleet-appliance enrol``
and ``storefleet enrol``): it makes the appliance's key, pins the CA and redeems the enrolment,
which only an appliance install can do. The operator's provisioning commands stay in
``provisioning.cli``, which both installs share and which therefore never imports the edge.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console


def _console(*, stderr: bool = False) -> Console:
    """Made when a command prints: ``storefleet agent`` mounts this app and never loads rich."""
    from rich.console import Console

    return Console(stderr=stderr)


def _fail(message: str) -> typer.Exit:
    from rich.markup import escape

    _console(stderr=True).print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code=1)


def enrol(
    *,
    identity_dir: Annotated[Path, typer.Option(help="Where the appliance keeps its identity.")],
    qr: Annotated[str | None, typer.Option(help="The scanned QR text (sfenrol:1?…).")] = None,
    code: Annotated[str | None, typer.Option(help="The typed code (XXXX-XXXX-XXXX).")] = None,
) -> None:
    """Enrol this appliance as first boot does; --code needs STOREFLEET_ENROL_* settings."""
    from edge.enrolment.errors import EnrolmentFailed
    from edge.enrolment.first_boot import enrol_from_qr, enrol_with_code
    from edge.enrolment.settings import EnrolmentSettings
    from provisioning.errors import ProvisioningError

    if (qr is None) == (code is None):
        raise _fail("give --qr (scanned text) or --code (typed code)")
    try:
        console = _console()
        with console.status("enrolling: pinning the CA, sending the request…"):
            if qr is not None:
                result = asyncio.run(enrol_from_qr(qr, identity_dir=identity_dir))
            else:
                if code is None:
                    raise RuntimeError("enrolment needs a QR payload or a typed code")
                settings = EnrolmentSettings(identity_dir=identity_dir)
                result = asyncio.run(enrol_with_code(code, settings=settings))
    except (EnrolmentFailed, ProvisioningError, ValueError) as err:
        raise _fail(str(err)) from err
    state = "already enrolled" if result.resumed else "enrolled"
    console.print(f"[green]{state}[/] as [bold]{result.device_id}[/], broker {result.broker_url}")
