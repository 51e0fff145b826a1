"""`storefleet operators …`: bootstrap the first admin, list operators, mint and revoke tokens.

These commands open the control plane's SQL store directly (shell access to it already
outranks every role), migrate it if needed, and audit what they do as ``cli:<user>``. Secrets
(a new operator's password, a token) are printed once and stored only hashed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # the store is imported by each command, so `--help` stays fast
    from sqlalchemy.ext.asyncio import AsyncEngine

app = typer.Typer(help="Operators of the control plane: accounts and API tokens.")
token_app = typer.Typer(help="API tokens for automation.")
app.add_typer(token_app, name="token")
console = Console()
errors = Console(stderr=True)
T = TypeVar("T")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        help="the control plane's store (default: STOREFLEET_CP_DATABASE_URL or its default)"
    ),
]


def _database_url(given: str | None) -> str:
    if given:
        return given
    from pydantic import ValidationError

    from control_plane.settings import ControlPlaneSettings

    try:
        return ControlPlaneSettings().database_url
    except ValidationError as err:
        errors.print(f"[bold red]error:[/] {err.errors()[0]['msg']}")
        raise typer.Exit(code=2) from err


def _run(url: str, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Migrate the store, run ``work`` on it; a refusal is one line on stderr, exit 1."""
    from control_plane.db.engine import make_engine, migrate
    from control_plane.problems import DomainError

    async def main() -> T:
        engine = make_engine(url)
        try:
            await migrate(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except DomainError as err:  # an operators refusal, or the registry's unknown tenant
        advice = f" ({err.advice})" if err.advice else ""
        errors.print(f"[bold red]refused:[/] {err}{advice}")
        raise typer.Exit(code=1) from err


@app.command("create")
def create(
    email: Annotated[str, typer.Option(help="the operator's email (their login)")],
    role: Annotated[str, typer.Option(help="platform_admin, tenant_admin, operator or viewer")],
    tenant: Annotated[
        str | None, typer.Option(help="the tenant (every role but platform_admin)")
    ] = None,
    name: Annotated[str, typer.Option(help="display name")] = "",
    database_url: DatabaseUrl = None,
) -> None:
    """Create an operator with a generated password, printed once (bootstraps the first admin)."""
    from control_plane.operators import service
    from control_plane.operators.gatekeeper import wall_clock_ms
    from control_plane.operators.passwords import Passwords
    from control_plane.operators.principal import Role
    from control_plane.operators.settings import OperatorSettings

    try:
        chosen = Role(role)
    except ValueError as err:
        errors.print(
            f"[bold red]error:[/] --role {role!r} is not one of {', '.join(r.value for r in Role)}"
        )
        raise typer.Exit(code=2) from err

    async def work(engine: AsyncEngine) -> tuple[service.OperatorView, str]:
        return await service.create_operator(
            engine,
            passwords=Passwords(OperatorSettings()),
            by=None,
            email=email,
            role=chosen,
            tenant_id=tenant,
            display_name=name,
            now=wall_clock_ms(),
            client="cli",
        )

    view, password = _run(_database_url(database_url), work)
    where = f" of tenant {view.tenant_id}" if view.tenant_id else ""
    console.print(f"operator {view.email} ({view.role.value}{where}) created.")
    console.print("password (shown once; store it now, it cannot be shown again):")
    typer.echo(password)
    if view.role.needs_totp:
        console.print("At the first login the console asks them to set up an authenticator.")


@app.command("list")
def list_operators(database_url: DatabaseUrl = None) -> None:
    """Every operator: role, tenant, whether TOTP is set up."""
    from sqlalchemy import select

    from control_plane.operators.tables import operators

    async def work(engine: AsyncEngine) -> list[dict[str, object]]:
        async with engine.connect() as conn:
            rows = await conn.execute(select(operators).order_by(operators.c.email))
            return [dict(row) for row in rows.mappings()]

    table = Table("email", "role", "tenant", "TOTP", "disabled")
    for row in _run(_database_url(database_url), work):
        table.add_row(
            str(row["email"]),
            str(row["role"]),
            str(row["tenant_id"] or "–"),
            "yes" if row["totp_confirmed_at"] else "no",
            "yes" if row["disabled_at"] else "",
        )
    console.print(table)


@token_app.command("create")
def token_create(
    email: Annotated[str, typer.Option(help="the operator the token acts for")],
    scope: Annotated[
        list[str],
        typer.Option(help="read, devices, enrolments, catalog, rollouts, audit, tenants"),
    ],
    name: Annotated[str, typer.Option(help="what the token is for")] = "automation",
    days: Annotated[int | None, typer.Option(help="lifetime in days (default 90)")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API token for an operator; the token is printed once."""
    from control_plane.operators import service
    from control_plane.operators.gatekeeper import wall_clock_ms
    from control_plane.operators.settings import OperatorSettings

    async def work(engine: AsyncEngine) -> tuple[service.TokenView, str]:
        owner = await service.find_operator(engine, email=email)
        return await service.create_token(
            engine,
            settings=OperatorSettings(),
            owner=owner,
            actor=service.cli_actor(),
            name=name,
            scopes=scope,
            days=days,
            now=wall_clock_ms(),
            client="cli",
        )

    view, secret = _run(_database_url(database_url), work)
    console.print(f"token {view.id} ({' '.join(view.scopes)}) for {email} created.")
    console.print("token (shown once; send it as 'Authorization: Bearer <token>'):")
    typer.echo(secret)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="the token's id (not its secret)")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API token at once."""
    from control_plane.operators import service
    from control_plane.operators.gatekeeper import wall_clock_ms

    async def work(engine: AsyncEngine) -> service.TokenView:
        return await service.revoke_token(
            engine, by=None, token_id=token_id, now=wall_clock_ms(), client="cli"
        )

    view = _run(_database_url(database_url), work)
    console.print(f"token {view.id} revoked.")
