"""`storefleet provision …`: the provisioning commands that work without a control plane.

Mounted by the control plane's CLI with `app.add_typer(provisioning.cli.app, name="provision")`.
Commands that talk to the control plane's API (enrol-create, device-status, decommission,
replace, crl-refresh) live in `provisioning.cli_fleet` and are registered here. The field tech's
`enrol` is the appliance's (`edge.enrolment.cli`), so this package imports neither side.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from rich.console import Console
from rich.table import Table

from provisioning import cli_fleet
from provisioning.broker_config import write_broker_directory
from provisioning.ca import CertificateAuthority
from provisioning.enrolment import EnrolmentPayload
from provisioning.errors import ProvisioningError
from provisioning.fallback_code import format_code, normalise_fallback_code
from provisioning.keys import certificate_fingerprint
from provisioning.qr import EnrolmentSheet, render_png, render_sheet, render_svg

app = typer.Typer(help="Device identity and enrolment: CA, QR codes, certificates.")
console = Console()
errors = Console(stderr=True)

PASSPHRASE_ENV = "STOREFLEET_CA_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
cli_fleet.register(app)


def _fail(err: Exception) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {err}")
    return typer.Exit(code=1)


@app.command("init-ca")
def init_ca(
    directory: Annotated[Path, typer.Argument(help="Directory to create the CA in.")],
    *,
    passphrase: Annotated[
        str,
        typer.Option(
            envvar=PASSPHRASE_ENV,
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help=f"Encrypts the CA keys (from ${PASSPHRASE_ENV}; at least 16 characters).",
        ),
    ],
    organisation: Annotated[str, typer.Option(help="Organisation name in CA subjects.")] = (
        "storefleet"
    ),
    broker_host: Annotated[
        list[str] | None,
        typer.Option(help="Also write a broker directory for this host name or IP (repeatable)."),
    ] = None,
    broker_port: Annotated[int, typer.Option(help="TLS port of the broker listener.")] = 8883,
    broker_service_port: Annotated[
        int,
        typer.Option(
            help="TLS port of the control plane's listener (client ids not bound to "
            "certificates: on 127.0.0.1 only, appliances must never reach it)."
        ),
    ] = 8884,
) -> None:
    """Create a root and issuing CA; print the fingerprint that enrolment QR codes pin."""
    try:
        ca = CertificateAuthority.create(
            directory, passphrase=passphrase.encode(), organisation=organisation
        )
        if broker_host:
            files = write_broker_directory(
                directory / "broker",
                ca=ca,
                hostnames=broker_host,
                port=broker_port,
                service_port=broker_service_port,
            )
            console.print(f"broker config: {files.config}")
    except ProvisioningError as err:
        raise _fail(err) from err
    console.print(f"CA created in {directory}")
    console.print(f"fingerprint: [bold]{ca.fingerprint}[/]")


@app.command("qr")
def qr(
    output: Annotated[Path, typer.Argument(help="File to write: .svg, .png or .pdf (sheet).")],
    *,
    url: Annotated[str, typer.Option(help="Control-plane URL the appliance enrols with.")],
    token: Annotated[str, typer.Option(help="Enrolment token (sfe_…).")],
    tenant: Annotated[str, typer.Option(help="Tenant id.")],
    store: Annotated[str, typer.Option(help="Store id.")],
    fingerprint: Annotated[
        str | None, typer.Option(help="CA fingerprint to pin (sha256 hex of the root).")
    ] = None,
    ca_dir: Annotated[
        Path | None, typer.Option(help="Read the fingerprint from this CA directory instead.")
    ] = None,
    sheet: Annotated[
        bool, typer.Option(help="Write the printable sheet, not the bare QR.")
    ] = False,
    store_name: Annotated[str | None, typer.Option(help="Store name on the sheet.")] = None,
    code: Annotated[str | None, typer.Option(help="Typed fallback code on the sheet.")] = None,
    expires: Annotated[
        datetime | None, typer.Option(help="Expiry on the sheet (ISO 8601, UTC).")
    ] = None,
) -> None:
    """Render an enrolment QR code (SVG/PNG) or a printable sheet (PNG/PDF) to a file."""
    try:
        payload = EnrolmentPayload(
            control_plane_url=url,
            token=token,
            ca_fingerprint=fingerprint or _fingerprint_from(ca_dir),
            tenant_id=tenant,
            store_id=store,
        )
    except (ValueError, ProvisioningError) as err:
        raise _fail(err) from err
    suffix = output.suffix.lower()
    if suffix not in {".svg", ".png", ".pdf"}:
        msg = f"cannot write {suffix or 'a file without suffix'}; use .svg, .png or .pdf"
        raise _fail(ValueError(msg))
    if sheet or suffix == ".pdf":
        if suffix == ".svg" or store_name is None or code is None or expires is None:
            msg = "a sheet is written as .png or .pdf and needs --store-name, --code and --expires"
            raise _fail(ValueError(msg))
        try:
            canonical = normalise_fallback_code(code)
        except ProvisioningError as err:
            raise _fail(err) from err
        data = render_sheet(
            EnrolmentSheet(
                store_name=store_name,
                payload=payload,
                fallback_code=format_code(canonical),
                expires_at=expires if expires.tzinfo else expires.replace(tzinfo=UTC),
            ),
            kind="pdf" if suffix == ".pdf" else "png",
        )
    else:
        data = render_svg(payload) if suffix == ".svg" else render_png(payload)
    output.write_bytes(data)
    console.print(f"wrote {output}")


def _fingerprint_from(ca_dir: Path | None) -> str:
    if ca_dir is None:
        msg = "give --fingerprint or --ca-dir so the appliance knows which CA to trust"
        raise ValueError(msg)
    try:
        root = x509.load_pem_x509_certificate((ca_dir / "root.crt.pem").read_bytes())
    except FileNotFoundError as err:
        msg = f"{ca_dir} holds no root.crt.pem; give the directory made by init-ca"
        raise ValueError(msg) from err
    return certificate_fingerprint(root)


def _key_description(certificate: x509.Certificate) -> str:
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    return type(key).__name__


@app.command("inspect-cert")
def inspect_cert(
    path: Annotated[Path, typer.Argument(help="PEM file: a certificate or a chain.")],
) -> None:
    """Show subject, SAN, serial, issuer, validity, key and fingerprint of each certificate."""
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as err:
        raise _fail(ValueError(f"{path} holds no readable PEM certificate ({err})")) from err
    for certificate in certificates:
        table = Table(show_header=False, box=None)
        table.add_row("subject", certificate.subject.rfc4514_string())
        try:
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            table.add_row("SAN", ", ".join(str(name.value) for name in san.value))
        except x509.ExtensionNotFound:
            pass
        table.add_row("serial", format(certificate.serial_number, "x"))
        table.add_row("issuer", certificate.issuer.rfc4514_string())
        table.add_row("valid from", certificate.not_valid_before_utc.isoformat())
        table.add_row("valid until", certificate.not_valid_after_utc.isoformat())
        table.add_row("key", _key_description(certificate))
        table.add_row("sha256", certificate_fingerprint(certificate))
        console.print(table)
        console.print()


if __name__ == "__main__":
    app()
