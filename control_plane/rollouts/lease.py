"""One driver per rollout across every control-plane instance: an expiring lease row.

How it works: ``rollout_leases`` has at most one row per rollout: its owner (an instance's id)
and when the lease runs out. :func:`acquire` takes or renews it with one conditional UPDATE
(mine already, or expired) and, when no row exists yet, an INSERT whose primary key lets only one
instance win; both stores (SQLite, PostgreSQL) serialise these writes, so two instances can never
both hold it. A crashed instance simply stops renewing: another takes over when it expires, and
as every step of the driver is a conditional update of the database, it continues where the
crashed one stopped. The same rules lease any other driven thing (a configuration change
through waves): ``table`` is any table shaped like ``rollout_leases`` — its key, ``owner``,
``expires_at``.
"""

from __future__ import annotations

from sqlalchemy import Column, Table, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.rollouts.tables import rollout_leases


def _key(table: Table) -> Column[str]:
    """The leased thing's id: the table's one primary-key column."""
    (key,) = table.primary_key.columns
    return key


async def acquire(
    engine: AsyncEngine,
    *,
    rollout_id: str,
    owner: str,
    now_ms: int,
    ttl_ms: int,
    table: Table = rollout_leases,
) -> bool:
    """Take or renew the lease on ``rollout_id`` for ``ttl_ms``; whether ``owner`` holds it."""
    key = _key(table)
    async with engine.begin() as conn:
        renewed = await conn.execute(
            update(table)
            .where(
                key == rollout_id,
                or_(table.c.owner == owner, table.c.expires_at < now_ms),
            )
            .values(owner=owner, expires_at=now_ms + ttl_ms)
        )
        if renewed.rowcount == 1:
            return True
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(table).values(
                    {key.name: rollout_id, "owner": owner, "expires_at": now_ms + ttl_ms}
                )
            )
    except IntegrityError:
        return False  # someone else holds it
    return True


async def release(
    engine: AsyncEngine, *, rollout_id: str, owner: str, table: Table = rollout_leases
) -> None:
    """Give the lease up (a clean stop), so another instance need not wait for it to expire."""
    async with engine.begin() as conn:
        await conn.execute(
            update(table)
            .where(_key(table) == rollout_id, table.c.owner == owner)
            .values(expires_at=0)
        )
