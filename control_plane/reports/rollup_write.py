"""Adding folded rows to both rollup levels, set-based: one statement per page on PostgreSQL.

Why: the fold worker (:mod:`~control_plane.reports.fold_worker`) and the reads' catch-up add
a page of records at a time, in a transaction that holds the device's mark and its store's
daily rows while it runs. Reading the rows a page touches and then inserting or updating each
one (the catch-up's first form) was three round trips a table and a parameter set per row;
``INSERT … ON CONFLICT DO UPDATE`` adds a page's rows to what is stored in one pass, and on
PostgreSQL every table's rows go as one array per column (``unnest``, as
:mod:`~control_plane.ingest.rows` stores the journal) in data-modifying CTEs of the mark's own
upsert: one statement, one round trip, the same text for every page (prepared once). SQLite has
no arrays: there each table is one ``executemany``.

How it works: the fold gives each 15-minute table's rows keyed ``(bucket, *keys)``;
:func:`daily_rows` adds them up per local date of the store (the bucket's start in the store's
time zone: a quarter hour never straddles a local midnight, so a clock-change day simply holds 92
or 100 buckets), and both levels are written from those same rows, so a day's row is the sum of
its buckets by construction. Labels (an item's name) keep the greater, compared by code point
(``COLLATE "C"`` on PostgreSQL, SQLite's ``BINARY``) exactly as Python's ``max`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, Date, String, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.reports.period import local
from control_plane.reports.rollup_fold import Folded, Row
from control_plane.reports.rollup_tables import SPECS, Spec

#: Each level's leading key columns and their types.
_LEVELS = {
    "bucket": (("device_id", String), ("bucket", BigInteger)),
    "day": (("store_id", String), ("day", Date)),
}


def daily_rows(
    rows: Mapping[tuple[object, ...], Row], spec: Spec, timezone: str
) -> dict[tuple[object, ...], Row]:
    """15-minute rows keyed ``(bucket, *keys)`` added up per ``(local date, *keys)``."""
    days: dict[int, date] = {}
    out: dict[tuple[object, ...], Row] = {}
    for key, row in rows.items():
        bucket = int(str(key[0]))
        day = days.get(bucket)
        if day is None:
            day = days[bucket] = local(bucket, timezone).date()
        into = out.get((day, *key[1:]))
        if into is None:
            out[(day, *key[1:])] = dict(row)
            continue
        for name in spec.sums:
            into[name] = int(into[name]) + int(row[name])
        for name in spec.labels:
            into[name] = max(str(into[name]), str(row[name]))
    return out


def _columns(spec: Spec, level: str) -> list[tuple[str, Any]]:
    head = list(_LEVELS[level])
    return (
        head
        + [(k, String) for k in (*spec.keys, *spec.labels)]
        + [(n, BigInteger) for n in spec.sums]
    )


def _conflict_set(spec: Spec, *, postgresql: bool) -> str:
    t = spec.table.name
    sums = [f"{n} = {t}.{n} + excluded.{n}" for n in spec.sums]
    if postgresql:
        labels = [
            f'{n} = greatest({t}.{n} COLLATE "C", excluded.{n} COLLATE "C")' for n in spec.labels
        ]
    else:
        labels = [f"{n} = max({t}.{n}, excluded.{n})" for n in spec.labels]
    return ", ".join(sums + labels)


def _upsert_sql(spec: Spec, level: str, source: str, *, postgresql: bool) -> str:
    columns = [name for name, _ in _columns(spec, level)]
    key = [name for name, _ in _LEVELS[level]] + list(spec.keys)
    return (
        f"INSERT INTO {spec.table.name} ({', '.join(columns)}) {source} "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {_conflict_set(spec, postgresql=postgresql)}"
    )


def _tables() -> list[tuple[str, Spec, str]]:
    """(parameter prefix, table, level) of every rollup table, 15-minute then daily."""
    return [(f"r{n}", spec, "bucket") for n, spec in enumerate(SPECS)] + [
        (f"d{n}", spec.daily, "day") for n, spec in enumerate(SPECS)
    ]


def _pg_statement() -> TextClause:
    """Every table's upsert from its arrays, as CTEs of the mark's upsert."""
    ctes, params = [], []
    for prefix, spec, level in _tables():
        columns = _columns(spec, level)
        arrays = ", ".join(f":{prefix}_{name}" for name, _ in columns)
        names = ", ".join(name for name, _ in columns)
        source = f"SELECT * FROM unnest({arrays}) AS u ({names})"
        ctes.append(f"{prefix} AS ({_upsert_sql(spec, level, source, postgresql=True)})")
        params += [bindparam(f"{prefix}_{name}", type_=ARRAY(kind)) for name, kind in columns]
    mark = (
        "INSERT INTO report_rollup_marks (device_id, upto_seq) VALUES (:device_id, :upto) "
        "ON CONFLICT (device_id) DO UPDATE SET upto_seq = excluded.upto_seq"
    )
    statement = f"WITH {', '.join(ctes)} {mark}"
    return text(statement).bindparams(*params, bindparam("upto", type_=BigInteger))


def _sqlite_statements() -> list[tuple[str, TextClause]]:
    out = []
    for prefix, spec, level in _tables():
        columns = _columns(spec, level)
        values = f"VALUES ({', '.join(f':{name}' for name, _ in columns)})"
        statement = text(_upsert_sql(spec, level, values, postgresql=False)).bindparams(
            *[bindparam(name, type_=kind()) for name, kind in columns]
        )
        out.append((prefix, statement))
    return out


#: Built once: each batch binds its rows to the same statements.
_PG = _pg_statement()
_SQLITE = _sqlite_statements()
_SQLITE_MARK = text(
    "INSERT INTO report_rollup_marks (device_id, upto_seq) VALUES (:device_id, :upto) "
    "ON CONFLICT (device_id) DO UPDATE SET upto_seq = excluded.upto_seq"
)


def _row_key(item: tuple[tuple[object, ...], Row]) -> tuple[str, ...]:
    """A row's place in the order rows are written: its key, each part as text (a bucket's
    digits are all 13 long, a day's ISO date sorts as the date)."""
    return tuple(str(part) for part in item[0])


def _level_rows(
    folded: Folded, *, device_id: str, store_id: str, timezone: str
) -> dict[str, list[dict[str, object]]]:
    """Per parameter prefix, each row as its columns' values."""
    out: dict[str, list[dict[str, object]]] = {}
    for prefix, spec, level in _tables():
        base = spec if level == "bucket" else next(s for s in SPECS if s.daily is spec)
        rows = folded[base.name]
        if level == "day":
            rows = daily_rows(rows, base, timezone)
        owner = device_id if level == "bucket" else store_id
        head = [name for name, _ in _LEVELS[level]]
        # in key order: two folds of one store's registers lock its daily rows in the same
        # order, so they wait for each other instead of deadlocking
        out[prefix] = [
            {head[0]: owner, head[1]: key[0], **dict(zip(spec.keys, key[1:], strict=True)), **row}
            for key, row in sorted(rows.items(), key=_row_key)
        ]
    return out


async def add_folded(
    conn: AsyncConnection,
    *,
    device_id: str,
    store_id: str,
    timezone: str,
    folded: Folded,
    upto: int,
) -> None:
    """Add ``folded`` (one device's records, every table keyed ``(bucket, *keys)``) to both
    levels and move the device's mark to ``upto``, in ``conn``'s transaction."""
    rows = _level_rows(folded, device_id=device_id, store_id=store_id, timezone=timezone)
    if conn.dialect.name == "postgresql":
        params: dict[str, object] = {"device_id": device_id, "upto": upto}
        for prefix, spec, level in _tables():
            for name, _ in _columns(spec, level):
                params[f"{prefix}_{name}"] = [row[name] for row in rows[prefix]]
        await conn.execute(_PG, params)
        return
    for prefix, statement in _SQLITE:
        if rows[prefix]:
            await conn.execute(statement, rows[prefix])
    await conn.execute(_SQLITE_MARK, {"device_id": device_id, "upto": upto})
