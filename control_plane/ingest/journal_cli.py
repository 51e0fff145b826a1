"""`storefleet journal verify`: an auditor checks the cloud's copy of the journals from a shell.

Why a command: the check (:func:`control_plane.ingest.journal_audit.verify_journal`) trusts only
the fleet root it is given, so an auditor (or a fiscal inspector's script) runs it against a copy
of the database with the root they obtained on their own, and scripts read the exit code:

* 0 — every stored record continues its chain and every stored head verifies under a
  certificate the root signed for that device;
* 1 — something does not verify (a forged or rewritten chain, a head or certificate the root
  does not vouch for); each problem is printed;
* 2 — the check could not run (no root file, not a PEM certificate, no such store or not a
  control plane's store, an unknown device).

Without ``--device`` every device with stored records is checked. It only reads: nothing is
migrated or written, so it can run against a restored backup or a read-only replica.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:  # the store and cryptography are imported by the command, so --help is fast
    from cryptography import x509
    from sqlalchemy.ext.asyncio import AsyncEngine

    from control_plane.ingest.journal_audit import AuditReport

app = typer.Typer(help="The cloud's copy of the devices' journals, checked as an auditor would.")

EXIT_FORGED = 1
EXIT_CANNOT_CHECK = 2


def _cannot_check(message: str) -> NoReturn:
    sys.stderr.write(f"storefleet journal verify: {message}\n")
    raise typer.Exit(code=EXIT_CANNOT_CHECK)


def _root(path: Path) -> x509.Certificate:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as err:
        _cannot_check(f"cannot read the fleet root {path}: {err.strerror or err}")
    except ValueError:
        _cannot_check(f"{path} is not a PEM certificate: give the fleet CA's root (root.pem)")


def _database_url(given: str | None) -> str:
    if given:
        return given
    from pydantic import ValidationError

    from control_plane.settings import ControlPlaneSettings

    try:
        return ControlPlaneSettings().database_url
    except ValidationError as err:
        _cannot_check(str(err.errors()[0]["msg"]))


async def _devices(engine: AsyncEngine, asked: list[str]) -> list[str]:
    """The devices to check: those asked for (each must have stored records), else all."""
    from sqlalchemy import select

    from control_plane.ingest.tables import journal

    async with engine.connect() as conn:
        stored = set((await conn.execute(select(journal.c.device_id).distinct())).scalars().all())
    unknown = [device for device in asked if device not in stored]
    if unknown:
        _cannot_check(f"no stored journal for device {', '.join(map(repr, unknown))}")
    return asked or sorted(stored)


async def _verify_all(url: str, asked: list[str], root: x509.Certificate) -> list[AuditReport]:
    from sqlalchemy.exc import SQLAlchemyError

    from control_plane.db.engine import make_engine
    from control_plane.ingest.journal_audit import verify_journal

    engine = make_engine(url)
    try:
        devices = await _devices(engine, asked)
        return [await verify_journal(engine, device_id=d, ca_root=root) for d in devices]
    except SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).splitlines()[0]
        _cannot_check(f"cannot read the control plane's store at {url}: {reason}")
    finally:
        await engine.dispose()


def _line(report: AuditReport) -> str:
    summary = (
        f"{report.records} records, signed through seq {report.signed_through} "
        f"({report.heads_verified} heads, {len(report.certificates)} certificates), "
        f"{report.unsigned_tail} unsigned after"
    )
    if report.ok:
        return f"{report.device_id}: ok: {summary}"
    problems = "".join(f"\n  - {problem}" for problem in report.problems)
    return f"{report.device_id}: DOES NOT VERIFY: {summary}{problems}"


@app.command()
def verify(
    ca_root: Annotated[
        Path, typer.Option(help="PEM file of the fleet CA's root, obtained independently")
    ],
    device: Annotated[
        list[str] | None, typer.Option(help="a device to check (repeatable); default: all")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="the store to check (default: STOREFLEET_CP_DATABASE_URL)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the reports as JSON")] = False,
) -> None:
    """Re-verify stored journals and signed heads against the fleet root alone; exit 1 if any
    record or head does not verify, 2 if the check cannot run."""
    root = _root(ca_root)
    reports = asyncio.run(_verify_all(_database_url(database_url), device or [], root))
    if as_json:
        documents = [asdict(report) | {"ok": report.ok} for report in reports]
        sys.stdout.write(json.dumps(documents, indent=2) + "\n")
    else:
        sys.stdout.write("".join(_line(report) + "\n" for report in reports))
        if not reports:
            sys.stdout.write("no device has a stored journal\n")
    if not all(report.ok for report in reports):
        raise typer.Exit(code=EXIT_FORGED)
