"""`storefleet provision …` commands that talk to a running control plane.

Operators create enrolments, check, decommission and replace devices through the control
plane's API (httpx) with their API token (``STOREFLEET_API_TOKEN``), never by touching its
database, so the commands work the same against one machine or a fleet behind a load
balancer. The field tech's `enrol` runs on the appliance and lives on its side
(`edge.enrolment.cli`): this package is shared by both installs and never imports the edge.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import httpx
import segno
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
errors = Console(stderr=True)

API_ENV = "STOREFLEET_API_URL"
ApiUrl = Annotated[
    str, typer.Option("--api", envvar=API_ENV, help=f"Control-plane URL (${API_ENV}).")
]
DEFAULT_API = "http://127.0.0.1:8080"
TOKEN_ENV = "STOREFLEET_API_TOKEN"  # noqa: S105 - the variable's name, not a secret
ApiToken = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=TOKEN_ENV,
        help=f"An operator's API token, sft_… (${TOKEN_ENV}); `storefleet operators token create`.",
    ),
]
TIMEOUT = httpx.Timeout(30.0)


def _fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code=1)


def _call(api: str, token: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One API call as the token's operator; a refusal or an unreachable control plane ends the
    command with its reason (and, for a missing or refused token, what to set)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=api, timeout=TIMEOUT, headers=headers) as client:
            response = client.request(method, path, **kwargs)
    except httpx.HTTPError as err:
        raise _fail(f"cannot reach the control plane at {api}: {err}") from err
    if response.is_error:
        detail: Any = response.text
        with contextlib.suppress(ValueError, KeyError, TypeError):  # no problem body: the text
            problem = response.json()
            detail = f"{problem['detail']} [{problem['reason']}]"
        hint = ""
        if response.status_code == httpx.codes.UNAUTHORIZED:
            hint = f"; set {TOKEN_ENV} (or --token) to an operator's API token"
        raise _fail(f"{method} {path} answered {response.status_code}: {detail}{hint}")
    return response


def _save_sheets(
    api: str, token: str | None, created: dict[str, Any], png: Path | None, pdf: Path | None
) -> None:
    for target, url in ((png, created["qr_png_url"]), (pdf, created["sheet_pdf_url"])):
        if target is not None:
            target.write_bytes(_call(api, token, "GET", url).content)
            console.print(f"wrote {target}")


def _show_created(created: dict[str, Any], *, terminal_qr: bool) -> None:
    enrolment = created["enrolment"]
    table = Table(show_header=False, box=None)
    table.add_row("enrolment", enrolment["id"])
    table.add_row("store", f"{enrolment['tenant_id']}/{enrolment['store_id']}")
    if enrolment["register_name"]:
        table.add_row("register", enrolment["register_name"])
    if enrolment["replaces_device_id"]:
        table.add_row("replaces", enrolment["replaces_device_id"])
    table.add_row("expires", enrolment["expires_at"])
    table.add_row("typed code", f"[bold]{created['fallback_code']}[/]")
    console.print(table)
    if terminal_qr:
        segno.make_qr(created["qr_text"], error="m").terminal(compact=True)


def enrol_create(
    *,
    tenant: Annotated[str, typer.Option(help="Tenant id.")],
    store: Annotated[str, typer.Option(help="Store id.")],
    register: Annotated[str, typer.Option(help="Register name at the store.")] = "",
    created_by: Annotated[str, typer.Option(help="Your name, for the audit log.")] = "cli",
    ttl_hours: Annotated[float | None, typer.Option(help="Validity (default 24 h).")] = None,
    png: Annotated[Path | None, typer.Option(help="Save the QR code as PNG here.")] = None,
    pdf: Annotated[Path | None, typer.Option(help="Save the printable sheet (PDF) here.")] = None,
    show_qr: Annotated[bool, typer.Option(help="Draw the QR code in the terminal.")] = False,
    api: ApiUrl = DEFAULT_API,
    token: ApiToken = None,
) -> None:
    """Create a single-use enrolment for a store's register; save its QR and sheet."""
    body: dict[str, Any] = {
        "tenant_id": tenant,
        "store_id": store,
        "register_name": register,
        "created_by": created_by,
    }
    if ttl_hours is not None:
        body["ttl_hours"] = ttl_hours
    with console.status("creating the enrolment…"):
        created = _call(api, token, "POST", "/api/enrolments", json=body).json()
    with console.status("rendering the QR code and the sheet…"):
        _save_sheets(api, token, created, png, pdf)
    _show_created(created, terminal_qr=show_qr)


def device_status(
    device_id: Annotated[str, typer.Argument(help="Device id.")],
    *,
    api: ApiUrl = DEFAULT_API,
    token: ApiToken = None,
) -> None:
    """Show a device: store, register, presence, replication and its certificates."""
    device = _call(api, token, "GET", f"/api/devices/{device_id}").json()
    certificates = _call(api, token, "GET", f"/api/devices/{device_id}/certificates").json()
    table = Table(show_header=False, box=None)
    table.add_row("device", device["id"])
    table.add_row("store", f"{device['tenant_id']}/{device['store_id']}")
    table.add_row("register", device["register_name"] or "-")
    table.add_row("online", "yes" if device["online"] else "no")
    table.add_row("replicated up to", str(device["hwm"]))
    decommissioned = device["decommissioned_at"]
    table.add_row("decommissioned", "no" if decommissioned is None else str(decommissioned))
    console.print(table)
    listing = Table("serial", "valid until", "state")
    for certificate in certificates:
        if certificate["revoked_at"]:
            state = f"[red]revoked[/] ({certificate['reason']})"
        elif certificate["renewal_due"]:
            state = "[yellow]renewal due[/]"
        else:
            state = "[green]valid[/]"
        listing.add_row(certificate["serial"], certificate["not_after"], state)
    console.print(listing)


def decommission(
    device_id: Annotated[str, typer.Argument(help="Device id.")],
    *,
    by: Annotated[str, typer.Option(help="Your name, for the audit log.")] = "cli",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    api: ApiUrl = DEFAULT_API,
    token: ApiToken = None,
) -> None:
    """Revoke a device's certificates and take it out of the fleet (history stays)."""
    if not yes:
        typer.confirm(f"decommission {device_id}? Its certificates stop working", abort=True)
    retired = _call(
        api, token, "POST", f"/api/devices/{device_id}/decommission", json={"decommissioned_by": by}
    ).json()
    console.print(
        f"{device_id} decommissioned at {retired['decommissioned_at']}; revoked "
        f"{', '.join(retired['revoked_serials']) or 'nothing new'}"
    )
    if retired["crl_written"]:
        console.print("CRL rewritten: reload the broker (SIGHUP) to refuse new connections now")
    else:
        console.print("[yellow]no CRL file configured (STOREFLEET_CA_CRL_FILE)[/]")


def replace(
    device_id: Annotated[str, typer.Argument(help="The broken appliance's device id.")],
    *,
    created_by: Annotated[str, typer.Option(help="Your name, for the audit log.")] = "cli",
    ttl_hours: Annotated[float | None, typer.Option(help="Validity (default 24 h).")] = None,
    png: Annotated[Path | None, typer.Option(help="Save the QR code as PNG here.")] = None,
    pdf: Annotated[Path | None, typer.Option(help="Save the printable sheet (PDF) here.")] = None,
    show_qr: Annotated[bool, typer.Option(help="Draw the QR code in the terminal.")] = False,
    api: ApiUrl = DEFAULT_API,
    token: ApiToken = None,
) -> None:
    """Enrol a new appliance in a device's place: same store and register, old one revoked."""
    body: dict[str, Any] = {"created_by": created_by}
    if ttl_hours is not None:
        body["ttl_hours"] = ttl_hours
    with console.status("creating the replacement enrolment…"):
        created = _call(api, token, "POST", f"/api/devices/{device_id}/replace", json=body).json()
        _save_sheets(api, token, created, png, pdf)
    _show_created(created, terminal_qr=show_qr)
    console.print(f"{device_id} is retired when the new appliance enrols with this code")


def crl_refresh(*, api: ApiUrl = DEFAULT_API, token: ApiToken = None) -> None:
    """Have the control plane rewrite the broker's CRL (cron it daily, then SIGHUP the broker)."""
    written = _call(api, token, "POST", "/api/crl/refresh").json()["crl_written"]
    if not written:
        raise _fail("the control plane has no CRL file configured (STOREFLEET_CA_CRL_FILE)")
    console.print("CRL rewritten: reload the broker (SIGHUP)")


def register(app: typer.Typer) -> None:
    """Add these commands to the `provision` app."""
    app.command("enrol-create")(enrol_create)
    app.command("device-status")(device_status)
    app.command("decommission")(decommission)
    app.command("replace")(replace)
    app.command("crl-refresh")(crl_refresh)
