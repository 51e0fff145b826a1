"""The append-only audit log: every operator action and every refusal, who/what/when/where.

Actions are written in the same transaction as the change they record (a rolled-back change
leaves no entry, a committed one always has one); refusals in their own transaction, since no
change comes with them. There is no update or delete here, and the database refuses both.
``before``/``after`` are JSON documents of the changed row without secrets.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.operators.principal import Principal
from control_plane.operators.tables import audit_log

Outcome = Literal["ok", "refused"]
MAX_PAGE = 1000
CSV_COLUMNS = (
    "id",
    "at",
    "actor",
    "actor_id",
    "via",
    "token_id",
    "tenant_id",
    "action",
    "target",
    "outcome",
    "reason",
    "client",
    "before",
    "after",
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: an operator (session, token, CLI) or an anonymous client."""

    actor: str
    via: str
    actor_id: str | None = None
    token_id: str | None = None
    tenant_id: str | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        """The actor a principal is recorded as."""
        return cls(
            actor=principal.email,
            via=principal.via,
            actor_id=principal.operator_id,
            token_id=principal.token_id,
            tenant_id=principal.tenant_id,
        )


ANONYMOUS = Actor(actor="anonymous", via="anonymous")


@dataclass(slots=True)
class Watch:
    """Whether the request being served wrote an entry of its own (see `watch`)."""

    recorded: bool = False


_WATCH: ContextVar[Watch | None] = ContextVar("storefleet_audit_watch", default=None)


def watch() -> Watch:
    """Watch this request's entries: `record` marks the returned ``Watch``, so the change audit
    (`control_plane.operators.change_audit`) writes no second entry for a route that wrote its
    own, richer one (operators, tokens, rollouts …) in the change's transaction."""
    seen = Watch()
    _WATCH.set(seen)
    return seen


def changed_nothing() -> None:
    """Say the request being served changed nothing though its method is unsafe (a preview sent
    as a POST for its body): the change audit then writes no entry for it. Call it once the
    answer is ready, so a refused request is still recorded."""
    seen = _WATCH.get()
    if seen is not None:
        seen.recorded = True


def _json(document: Mapping[str, Any] | None) -> str | None:
    return None if document is None else json.dumps(document, sort_keys=True, default=str)


async def record(
    conn: AsyncConnection,
    *,
    at: int,
    actor: Actor,
    action: str,
    outcome: Outcome,
    target: str = "",
    reason: str = "",
    client: str = "",
    tenant_id: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Append one entry inside the caller's transaction.

    ``tenant_id`` is the tenant the action touched (defaults to the actor's), so a tenant
    admin's search finds what happened in their tenant, by anyone.
    """
    seen = _WATCH.get()
    if seen is not None:
        seen.recorded = True
    await conn.execute(
        insert(audit_log).values(
            at=at,
            actor_id=actor.actor_id,
            actor=actor.actor[:254],
            via=actor.via,
            token_id=actor.token_id,
            tenant_id=tenant_id if tenant_id is not None else actor.tenant_id,
            action=action[:64],
            target=target[:200],
            outcome=outcome,
            reason=reason[:64],
            client=client[:64],
            before=_json(before),
            after=_json(after),
        )
    )


async def record_alone(engine: AsyncEngine, **entry: Any) -> None:
    """`record` in a transaction of its own (refusals: nothing else is written)."""
    async with engine.begin() as conn:
        await record(conn, **entry)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """A search of the log; every field narrows it. Times are ms since the epoch."""

    tenant_id: str | None = None  # forced to the principal's own for tenant roles
    actor: str | None = None  # email (or "anonymous"), exact
    action: str | None = None  # exact, or a prefix ending in ":" ("operators:")
    outcome: Outcome | None = None
    since: int | None = None
    until: int | None = None
    before_id: int | None = None  # paging: entries older than this id


def _conditions(query: AuditQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.tenant_id is not None:
        conditions.append(audit_log.c.tenant_id == query.tenant_id)
    if query.actor is not None:
        conditions.append(
            or_(audit_log.c.actor == query.actor, audit_log.c.actor_id == query.actor)
        )
    if query.action is not None:
        if query.action.endswith(":"):
            conditions.append(audit_log.c.action.startswith(query.action, autoescape=True))
        else:
            conditions.append(audit_log.c.action == query.action)
    if query.outcome is not None:
        conditions.append(audit_log.c.outcome == query.outcome)
    if query.since is not None:
        conditions.append(audit_log.c.at >= query.since)
    if query.until is not None:
        conditions.append(audit_log.c.at < query.until)
    if query.before_id is not None:
        conditions.append(audit_log.c.id < query.before_id)
    return conditions


def _select(query: AuditQuery) -> Select[Any]:
    return select(audit_log).where(*_conditions(query)).order_by(audit_log.c.id.desc())


async def search(
    engine: AsyncEngine, *, query: AuditQuery, limit: int = 100
) -> list[dict[str, Any]]:
    """Entries matching ``query``, newest first, at most ``limit`` (≤ MAX_PAGE)."""
    async with engine.connect() as conn:
        rows = await conn.execute(_select(query).limit(min(limit, MAX_PAGE)))
        return [dict(row) for row in rows.mappings()]


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: formulas are quoted with a leading apostrophe."""
    text = "" if value is None else str(value)
    if text[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + text
    return text


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


async def export_csv(engine: AsyncEngine, *, query: AuditQuery) -> AsyncIterator[str]:
    """The matching entries as CSV text chunks (header first), newest first, streamed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async with engine.connect() as conn:
        result = await conn.stream(_select(query).execution_options(yield_per=500))
        async for row in result.mappings():
            cells = dict(row)
            cells["at"] = _iso(cells["at"])
            writer.writerow([_cell(cells[column]) for column in CSV_COLUMNS])
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()
