"""``storefleet register``: the whole register on an appliance, first boot included.

The appliance image runs this. With ``--identity-dir`` (or ``STOREFLEET_EDGE_IDENTITY_DIR``)
an appliance that has no certificate yet opens on the first-boot screen; once enrolled (then or
on any later start) it replicates over mTLS as the device its certificate names. A typed
enrolment code needs the control-plane URL and CA fingerprint from the image
(``STOREFLEET_ENROL_CONTROL_PLANE_URL`` / ``STOREFLEET_ENROL_CA_FINGERPRINT`` or the options);
without them the screen offers the QR scan only.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from edge.enrolment.settings import EnrolmentSettings
from edge.settings import EdgeSettings

if TYPE_CHECKING:  # the register's imports wait until it runs: `storefleet --help` stays quick
    from edge.peripherals.register_config import RegisterDevices

log = logging.getLogger(__name__)


class Peripherals(enum.StrEnum):
    """Which devices the register drives."""

    NONE = "none"
    SIMULATED = "simulated"  # the simulators speak the real protocols on loopback


def register(
    identity_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="STOREFLEET_EDGE_IDENTITY_DIR",
            help="key, certificate and enrolment of this appliance (made on first boot)",
        ),
    ] = None,
    ledger: Annotated[Path, typer.Option(help="path of the SQLite ledger")] = Path(
        "/var/lib/storefleet/ledger.db"
    ),
    kiosk_port: Annotated[int, typer.Option(help="the kiosk's HTTP port")] = 8080,
    kiosk_host: Annotated[str, typer.Option(help="the kiosk's address")] = "127.0.0.1",
    peripherals: Annotated[
        Peripherals, typer.Option(help="none, or simulated printer, scanner and RFID")
    ] = Peripherals.NONE,
    device_id: Annotated[
        str | None, typer.Option(help="a fixed device id instead of enrolment (bench only)")
    ] = None,
    broker_url: Annotated[
        str, typer.Option(help="broker for a fixed --device-id (enrolment names its own)")
    ] = "mqtt://127.0.0.1:1883",
    control_plane_url: Annotated[
        str | None, typer.Option(help="for typed enrolment codes (else STOREFLEET_ENROL_*)")
    ] = None,
    ca_fingerprint: Annotated[
        str | None, typer.Option(help="sha256 of the fleet root CA, for typed codes")
    ] = None,
) -> None:
    """Run the register with its kiosk; first boot shows the enrolment screen."""
    try:
        settings = EdgeSettings(
            device_id=device_id or "",
            identity_dir=identity_dir,
            ledger_path=ledger,
            broker_url=broker_url,
        )
    except ValidationError as err:
        hint = " (here: --identity-dir or --device-id)"
        raise typer.BadParameter(_problems(err) + hint) from err
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("aiosqlite", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from edge.peripherals.register_config import load_register_devices

    codes = _code_settings(identity_dir, control_plane_url, ca_fingerprint)
    devices = (
        load_register_devices({"STOREFLEET_PERIPHERALS_PRESET": "simulated"})
        if peripherals is Peripherals.SIMULATED
        else None
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(settings, kiosk_host, kiosk_port, devices=devices, codes=codes))
    typer.echo("register stopped.")


async def _run(
    settings: EdgeSettings,
    kiosk_host: str,
    kiosk_port: int,
    *,
    devices: RegisterDevices | None,
    codes: EnrolmentSettings | None,
) -> None:
    """Until SIGINT/SIGTERM: then the register stops in order and says "offline"."""
    from edge.kiosk.run import RegisterOptions, run_register

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    options = RegisterOptions(kiosk_host=kiosk_host, kiosk_port=kiosk_port)
    await run_register(settings, options, peripherals=devices, code_settings=codes, stop=stop)


def _code_settings(
    identity_dir: Path | None, url: str | None, fingerprint: str | None
) -> EnrolmentSettings | None:
    """What a typed code needs; None (QR only) when the image does not say, with a log line."""
    given = {"control_plane_url": url, "ca_fingerprint": fingerprint, "identity_dir": identity_dir}
    overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    try:
        return EnrolmentSettings(**overrides)  # the options win over STOREFLEET_ENROL_*
    except ValidationError as err:
        log.info("typed enrolment codes are off (%s); the QR scan works", _problems(err))
        return None


def _problems(err: ValidationError) -> str:
    """Each problem with the setting it is about, as the operator should read it."""
    problems = []
    for e in err.errors():
        where = ".".join(str(part) for part in e["loc"])
        message = str(e["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
