"""Customer profiles: create, read, search, edit, change consent, export, erase; tenant-scoped.

How it works: a profile (name, e-mail, phone) is JSON sealed under the customer's own key
(:mod:`control_plane.customers.keyring`); its search terms are written beside it as blind indexes
(:mod:`control_plane.customers.blind_index`) in the same transaction. A search hashes the text's
terms with the tenant's index key and asks for the customers that have all of them, then opens
those profiles. Every query is kept to the caller's tenant (:class:`TenantScope`), so another
tenant's customer answers the same 404 as a missing one.

Erasure (GDPR art. 17) shreds: the customer's sealed key and profile become NULL, its search
terms are deleted and its consent cleared, in one transaction with its audit entry; the row and
every sale attributed to its id stay, so totals and reports do not change. Export (art. 15/20)
and erasure are audited with the customer id only: the audit log never holds personal data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from prometheus_client import Counter
from sqlalchemy import (
    Integer,
    Row,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.customers.blind_index import (
    TERMS_VERSION,
    Query,
    masked_name,
    profile_terms,
    query_terms,
)
from control_plane.customers.errors import (
    CustomerErased,
    CustomerKeysUnavailable,
    CustomerNotFound,
    SearchTooVague,
)
from control_plane.customers.keyring import Keyring, TenantKeys, open_sealed, seal
from control_plane.customers.schemas import (
    ConsentIn,
    ConsentOut,
    CustomerExport,
    CustomerIn,
    CustomerOut,
    CustomerSale,
    ProfileChange,
    RegisterCustomer,
)
from control_plane.customers.tables import customer_receipts, customer_search_terms, customers
from control_plane.db.write_lock import hold_write_lock
from control_plane.devices.errors import TenantNotFound
from control_plane.devices.tables import tenants
from control_plane.operators import audit
from control_plane.operators.audit import Actor
from control_plane.sales.tables import sales
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.customer_card import (
    InvalidCustomerCard,
    format_customer_card,
    is_customer_card,
    new_customer_id,
    normalise_customer_id,
    parse_customer_card,
)

log = logging.getLogger(__name__)

#: The most customers one search answers.
SEARCH_LIMIT = 20
#: Customers re-indexed in one transaction, and the pause between batches: a control plane
#: started on a million older customers re-indexes them without holding the database.
REINDEX_BATCH, REINDEX_PAUSE_S = 500, 0.05
#: How often a re-indexer with nothing left looks again (another instance may have migrated).
REINDEX_IDLE_S = 3600.0

REINDEXED = Counter(
    "storefleet_customers_reindexed",
    "Customers whose search terms were rewritten for the current blind-index version, by outcome"
    " (reindexed; unopened: the profile does not open with the tenant's key, left as it was)",
    ["outcome"],
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _profile(keys: TenantKeys, row: Row[Any]) -> dict[str, str | None]:
    """The opened profile of a customer row, or all None once erased."""
    if row.wrapped_key is None or row.sealed_profile is None:
        return {"name": None, "email": None, "phone": None}
    aead = keys.customer_key(row.id, row.wrapped_key)
    try:
        plain = open_sealed(aead, row.sealed_profile, bound_to=f"profile:{row.id}")
    except InvalidTag as err:
        msg = f"customer {row.id}'s profile does not open with its key"
        raise CustomerKeysUnavailable(detail=msg) from err
    opened: dict[str, str | None] = json.loads(plain)
    return opened


async def profile_of(
    conn: AsyncConnection, keyring: Keyring, row: Row[Any]
) -> dict[str, str | None]:
    """A customer row's opened profile (all None once erased) — for the receipt mailer."""
    keys = await keyring.tenant(conn, row.tenant_id)
    if keys is None:
        return {"name": None, "email": None, "phone": None}
    return _profile(keys, row)


def _out(keys: TenantKeys | None, row: Row[Any]) -> CustomerOut:
    profile = (
        _profile(keys, row) if keys is not None else {"name": None, "email": None, "phone": None}
    )
    return CustomerOut(
        id=row.id,
        tenant_id=row.tenant_id,
        card=format_customer_card(row.id),
        name=profile["name"],
        email=profile["email"],
        phone=profile["phone"],
        consent=ConsentOut(
            marketing=row.marketing_consent,
            email_receipts=row.receipt_consent,
            given_at=row.consent_at,
            via=row.consent_via,
        ),
        created_at=row.created_at,
        erased_at=row.erased_at,
    )


def _consent_values(consent: ConsentIn, now: int) -> dict[str, Any]:
    return {
        "marketing_consent": consent.marketing,
        "receipt_consent": consent.email_receipts,
        "consent_at": now,
        "consent_via": consent.via,
    }


def _consent_audit(consent: ConsentIn) -> dict[str, Any]:
    return {"marketing": consent.marketing, "email_receipts": consent.email_receipts,
            "via": consent.via}  # fmt: skip


async def create_customer(
    engine: AsyncEngine,
    *,
    keyring: Keyring,
    tenant_id: str,
    body: CustomerIn,
    actor: Actor,
    client: str = "",
) -> CustomerOut:
    """A new customer of ``tenant_id`` (already claimed by the caller's scope), with a card id."""
    async with engine.connect() as conn:
        known = await conn.scalar(select(tenants.c.id).where(tenants.c.id == tenant_id))
    if known is None:  # a platform admin naming a tenant that does not exist
        raise TenantNotFound(tenant_id=tenant_id)
    keys = await keyring.tenant_for_writing(engine, tenant_id)
    customer_id = new_customer_id()
    now = _now_ms()
    aead, wrapped = keys.new_customer_key(customer_id)
    profile = {"name": body.name, "email": body.email, "phone": body.phone}
    sealed = seal(aead, json.dumps(profile).encode(), bound_to=f"profile:{customer_id}")
    terms = profile_terms(name=body.name, email=body.email, phone=body.phone)
    async with engine.begin() as conn:
        await conn.execute(
            insert(customers).values(
                id=customer_id,
                tenant_id=tenant_id,
                wrapped_key=wrapped,
                sealed_profile=sealed,
                created_at=now,
                updated_at=now,
                terms_version=TERMS_VERSION,
                **_consent_values(body.consent, now),
            )
        )
        await _write_terms(conn, keys, customer_id, terms)
        await audit.record(
            conn,
            at=now,
            actor=actor,
            action="customers:write",
            outcome="ok",
            target=f"customer {customer_id}",
            client=client,
            tenant_id=tenant_id,
            after={"created": customer_id, "consent": _consent_audit(body.consent)},
        )
        row = await _row(conn, EVERY_TENANT, customer_id)
    return _out(keys, row)


async def _write_terms(
    conn: AsyncConnection, keys: TenantKeys, customer_id: str, terms: set[str]
) -> None:
    if terms:
        await conn.execute(
            insert(customer_search_terms),
            [
                {"tenant_id": keys.tenant_id, "term": keys.term(term), "customer_id": customer_id}
                for term in sorted(terms)
            ],
        )


async def _row(
    conn: AsyncConnection, scope: TenantScope, customer_id: str, *, lock: bool = False
) -> Row[Any]:
    query = select(customers).where(
        customers.c.id == customer_id, scope.where(customers.c.tenant_id)
    )
    if lock:
        await hold_write_lock(conn)  # SQLite ignores FOR UPDATE
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise CustomerNotFound(customer_id=customer_id)
    return row


async def _live_row(
    conn: AsyncConnection, scope: TenantScope, customer_id: str, *, lock: bool = False
) -> Row[Any]:
    """The customer's row, refused once erased: consent, export and erasure need the profile."""
    row = await _row(conn, scope, customer_id, lock=lock)
    if row.erased_at is not None:
        raise CustomerErased(customer_id=customer_id)
    return row


async def get_customer(
    engine: AsyncEngine, *, keyring: Keyring, scope: TenantScope, customer_id: str
) -> CustomerOut:
    """One customer of the caller's tenant, profile opened (None fields once erased)."""
    async with engine.connect() as conn:
        row = await _row(conn, scope, customer_id)
        keys = await keyring.tenant(conn, row.tenant_id)
    return _out(keys, row)


async def _having_all(
    conn: AsyncConnection, keys: TenantKeys, terms: frozenset[str], limit: int
) -> list[str]:
    """The first ``limit`` customer ids (in id order) that have every one of ``terms``.

    One posting list joined to the others on the customer id: each list is read in id order
    from the primary key (tenant, term, customer), so the database merges them and stops at
    ``limit`` matches, where counting every row of every list (GROUP BY ... HAVING count)
    read all of them first.
    """
    hashed = sorted(keys.term(term) for term in terms)
    lists = [customer_search_terms.alias(f"t{n}") for n in range(len(hashed))]
    first = lists[0]
    query = select(first.c.customer_id).where(
        first.c.tenant_id == keys.tenant_id, first.c.term == hashed[0]
    )
    for other, term in zip(lists[1:], hashed[1:], strict=True):
        query = query.join(
            other,
            (other.c.tenant_id == first.c.tenant_id)
            & (other.c.customer_id == first.c.customer_id)
            & (other.c.term == term),
        )
    query = query.order_by(first.c.customer_id).limit(limit)
    return list((await conn.execute(query)).scalars())


async def _reindexed(conn: AsyncConnection, tenant_id: str) -> bool:
    """Whether every customer of the tenant has the current terms (see reindex_customers)."""
    # the version inline, not a parameter: PostgreSQL's generic plan of a prepared statement
    # guesses a third of the rows below a parameter and scans the whole table (0.8 s at
    # 1,000,000 customers), where below the constant the statistics say "none": one index probe
    current = literal_column(str(int(TERMS_VERSION)), Integer())
    older = select(customers.c.id).where(
        customers.c.tenant_id == tenant_id, customers.c.terms_version < current
    )
    return not await conn.scalar(select(exists(older)))


async def _matching_ids(
    conn: AsyncConnection, keys: TenantKeys, query: Query, limit: int
) -> list[str]:
    """The ids a query finds: its own terms, else (a name found by none) its prefix terms.

    A tenant whose older customers are not all re-indexed yet has no word-pair terms for them:
    its name searches intersect the prefixes, as before version 2, so no one is missed.
    """
    if query.prefix_terms is not None and not await _reindexed(conn, keys.tenant_id):
        return await _having_all(conn, keys, query.prefix_terms, limit)
    found = await _having_all(conn, keys, query.terms, limit)
    if not found and query.prefix_terms is not None:
        found = await _having_all(conn, keys, query.prefix_terms, limit)
    return found


async def _search_rows(
    conn: AsyncConnection, keyring: Keyring, *, tenant_id: str, text: str, limit: int
) -> tuple[TenantKeys | None, Sequence[Row[Any]], str]:
    """The customer rows of ``tenant_id`` a search text finds: a card or id, else its terms."""
    keys = await keyring.tenant(conn, tenant_id)
    candidate = text.strip()
    kind = "card"
    try:
        ids = [
            parse_customer_card(candidate)
            if is_customer_card(candidate)
            else normalise_customer_id(candidate)
        ]
    except InvalidCustomerCard:
        query = query_terms(text)
        if query is None:
            raise SearchTooVague(text_length=len(text)) from None
        kind = query.kind
        ids = [] if keys is None else await _matching_ids(conn, keys, query, limit)
    if not ids:
        return keys, [], kind
    rows = (
        await conn.execute(
            select(customers)
            .where(
                customers.c.id.in_(ids),
                customers.c.tenant_id == tenant_id,
                customers.c.erased_at.is_(None),
            )
            .order_by(customers.c.id)
        )
    ).all()
    return keys, rows, kind


async def newest_customers(
    engine: AsyncEngine, *, keyring: Keyring, tenant_id: str | None, limit: int = SEARCH_LIMIT
) -> list[CustomerOut]:
    """The newest customers of ``tenant_id`` (None: of every tenant, for a platform admin)."""
    query = select(customers).order_by(customers.c.created_at.desc()).limit(limit)
    if tenant_id is not None:
        query = query.where(customers.c.tenant_id == tenant_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        found = []
        for row in rows:
            keys = await keyring.tenant(conn, row.tenant_id)
            found.append(_out(keys, row))
    return found


async def search_customers(
    engine: AsyncEngine,
    *,
    keyring: Keyring,
    tenant_id: str,
    text: str,
    actor: Actor,
    client: str = "",
    limit: int = SEARCH_LIMIT,
) -> list[CustomerOut]:
    """Customers of ``tenant_id`` matching ``text`` (name, phone, e-mail, card).

    A search of personal data is audited: who searched, which kind of text, how many were
    found — never the text itself (it may be an e-mail or a phone number).
    """
    async with engine.begin() as conn:
        keys, rows, kind = await _search_rows(
            conn, keyring, tenant_id=tenant_id, text=text, limit=limit
        )
        await audit.record(
            conn,
            at=_now_ms(),
            actor=actor,
            action="customers:read",
            outcome="ok",
            target="customer search",
            client=client,
            tenant_id=tenant_id,
            after={"by": kind, "found": len(rows)},
        )
    return [_out(keys, row) for row in rows]


async def search_for_register(
    engine: AsyncEngine, *, keyring: Keyring, tenant_id: str, text: str
) -> list[RegisterCustomer]:
    """What a register of ``tenant_id`` may see of the customers its search finds."""
    async with engine.connect() as conn:
        keys, rows, _ = await _search_rows(
            conn, keyring, tenant_id=tenant_id, text=text, limit=SEARCH_LIMIT
        )
    found = []
    for row in rows:
        name = _profile(keys, row)["name"] if keys is not None else None
        found.append(RegisterCustomer(id=row.id, display_name=masked_name(name or "")))
    return found


async def change_consent(
    engine: AsyncEngine,
    *,
    keyring: Keyring,
    scope: TenantScope,
    customer_id: str,
    consent: ConsentIn,
    actor: Actor,
    client: str = "",
) -> CustomerOut:
    """Record new consent (given or withdrawn), when and how; audited."""
    now = _now_ms()
    async with engine.begin() as conn:
        row = await _live_row(conn, scope, customer_id)
        await conn.execute(
            update(customers)
            .where(customers.c.id == customer_id)
            .values(updated_at=now, **_consent_values(consent, now))
        )
        await audit.record(
            conn,
            at=now,
            actor=actor,
            action="customers:write",
            outcome="ok",
            target=f"customer {customer_id} consent",
            client=client,
            tenant_id=row.tenant_id,
            after={"consent": _consent_audit(consent)},
        )
        row = await _row(conn, scope, customer_id)
        keys = await keyring.tenant(conn, row.tenant_id)
    return _out(keys, row)


async def update_profile(
    engine: AsyncEngine,
    *,
    keyring: Keyring,
    scope: TenantScope,
    customer_id: str,
    change: ProfileChange,
    actor: Actor,
    client: str = "",
) -> CustomerOut:
    """Correct a customer's name, e-mail or phone (issue 14): the profile is sealed again under
    the customer's own key and ALL its search terms are rewritten, in one transaction, so the
    old phone number finds no one from the moment the new one finds the customer.

    The row is locked while its profile is opened and sealed again: two edits at once would
    otherwise each keep the field the other changed as it was, and the re-indexer (SKIP
    LOCKED) passes it by; the terms written are the current version's. The audit entry names
    the fields changed, never their values; a refusal (another tenant's or an erased customer)
    writes its own entry too, so the policy's generic entry, which keeps the request body, is
    not written.
    """
    changed = change.changes()
    now = _now_ms()
    try:
        async with engine.begin() as conn:
            row = await _live_row(conn, scope, customer_id, lock=True)
            keys = await keyring.tenant(conn, row.tenant_id)
            if keys is None:  # a live customer's tenant has keys: the keys table was tampered
                msg = f"tenant {row.tenant_id} has no customer key for customer {customer_id}"
                raise CustomerKeysUnavailable(detail=msg)
            profile = _profile(keys, row) | changed
            aead = keys.customer_key(row.id, row.wrapped_key)
            sealed = seal(aead, json.dumps(profile).encode(), bound_to=f"profile:{row.id}")
            await conn.execute(
                update(customers)
                .where(customers.c.id == customer_id)
                .values(sealed_profile=sealed, updated_at=now, terms_version=TERMS_VERSION)
            )
            await conn.execute(
                delete(customer_search_terms).where(
                    customer_search_terms.c.customer_id == customer_id
                )
            )
            terms = profile_terms(
                name=profile["name"] or "", email=profile["email"], phone=profile["phone"]
            )
            await _write_terms(conn, keys, customer_id, terms)
            await audit.record(
                conn,
                at=now,
                actor=actor,
                action="customers:write",
                outcome="ok",
                target=f"customer {customer_id} profile",
                client=client,
                tenant_id=row.tenant_id,
                after={"changed": sorted(changed)},
            )
            row = await _row(conn, scope, customer_id)
    except (CustomerNotFound, CustomerErased) as err:
        await audit.record_alone(
            engine,
            at=now,
            actor=actor,
            action="customers:write",
            outcome="refused",
            target=f"customer {customer_id} profile",
            reason=err.reason,
            client=client,
            after={"changed": sorted(changed)},
        )
        raise
    return _out(keys, row)


async def sales_of(
    conn: AsyncConnection, *, tenant_id: str, customer_id: str, limit: int | None = None
) -> list[CustomerSale]:
    """The sales attributed to a customer, newest first (none until sales carry customer_id)."""
    column = sales.c.get("customer_id")
    if column is None:  # the sales table gets its customer_id with the loyalty migration
        return []
    query = (
        select(sales)
        .where(column == customer_id, sales.c.tenant_id == tenant_id)
        .order_by(sales.c.ts.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    rows = (await conn.execute(query)).mappings().all()
    return [
        CustomerSale(
            sale_id=row["sale_id"],
            device_id=row["device_id"],
            store_id=row["store_id"],
            receipt_no=row["receipt_no"],
            currency=row["currency"],
            total_minor=row["total_minor"],
            ts=row["ts"],
        )
        for row in rows
    ]


async def export_customer(
    engine: AsyncEngine,
    *,
    keyring: Keyring,
    scope: TenantScope,
    customer_id: str,
    actor: Actor,
    client: str = "",
) -> CustomerExport:
    """Everything stored about one customer; the export itself is audited."""
    now = _now_ms()
    async with engine.begin() as conn:
        row = await _live_row(conn, scope, customer_id)
        keys = await keyring.tenant(conn, row.tenant_id)
        bought = await sales_of(conn, tenant_id=row.tenant_id, customer_id=customer_id)
        sent = (
            await conn.execute(
                select(func.count()).where(
                    customer_receipts.c.customer_id == customer_id,
                    customer_receipts.c.status == "sent",
                )
            )
        ).scalar_one()
        await audit.record(
            conn,
            at=now,
            actor=actor,
            action="customers:export",
            outcome="ok",
            target=f"customer {customer_id}",
            client=client,
            tenant_id=row.tenant_id,
            after={"exported": customer_id, "sales": len(bought)},
        )
    return CustomerExport(
        exported_at=now, customer=_out(keys, row), sales=bought, receipts_sent=int(sent)
    )


async def erase_customer(
    engine: AsyncEngine, *, scope: TenantScope, customer_id: str, actor: Actor, client: str = ""
) -> int:
    """Shred one customer's personal data (see the module's docstring); when it was erased."""
    now = _now_ms()
    async with engine.begin() as conn:
        row = await _live_row(conn, scope, customer_id)
        await conn.execute(
            update(customers)
            .where(customers.c.id == customer_id)
            .values(
                wrapped_key=None,
                sealed_profile=None,
                marketing_consent=False,
                receipt_consent=False,
                consent_at=now,
                consent_via=None,
                updated_at=now,
                erased_at=now,
                terms_version=TERMS_VERSION,  # no terms at all: nothing to re-index
            )
        )
        terms = await conn.execute(
            delete(customer_search_terms).where(customer_search_terms.c.customer_id == customer_id)
        )
        await conn.execute(
            update(customer_receipts)
            .where(
                customer_receipts.c.customer_id == customer_id,
                customer_receipts.c.status == "pending",
            )
            .values(status="skipped", done_at=now, last_error="the customer was erased")
        )
        await audit.record(
            conn,
            at=now,
            actor=actor,
            action="customers:erase",
            outcome="ok",
            target=f"customer {customer_id}",
            client=client,
            tenant_id=row.tenant_id,
            after={"erased": customer_id, "search_terms_removed": int(terms.rowcount)},
        )
    return now


async def reindex_customers(
    engine: AsyncEngine, keyring: Keyring, *, after: str = "", batch: int = REINDEX_BATCH
) -> str | None:
    """Rewrite the search terms of the next ``batch`` customers (by id, after ``after``) written
    by an older TERMS_VERSION; the last id looked at, None when there was none.

    SQL cannot compute the terms (HMACs of the sealed profile), so a migration that adds a kind
    of term (0025) leaves the older customers to this. Rows are locked and skipped when
    another instance holds them (``SKIP LOCKED``), so control planes started together share
    the work; an erased customer (no terms, no profile) only gets the version. A profile that
    does not open with the tenant's key keeps its old terms (its tenant's name searches stay on
    the prefixes), is counted and logged, and is tried again on the next pass.
    """
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                select(customers)
                .where(customers.c.terms_version < TERMS_VERSION, customers.c.id > after)
                .order_by(customers.c.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
        done: list[str] = []  # the batch's rows whose terms are rewritten: three statements
        written: list[dict[str, Any]] = []
        for row in rows:
            if row.erased_at is None:  # an erased one only gets the version: erasure took its terms
                opened = await _opened(conn, keyring, row)
                if opened is None:
                    continue
                keys, profile = opened
                terms = profile_terms(
                    name=profile["name"] or "", email=profile["email"], phone=profile["phone"]
                )
                written.extend(
                    {"tenant_id": keys.tenant_id, "term": keys.term(term), "customer_id": row.id}
                    for term in sorted(terms)
                )
                REINDEXED.labels("reindexed").inc()
            done.append(row.id)
        if done:
            t = customer_search_terms.c
            await conn.execute(delete(customer_search_terms).where(t.customer_id.in_(done)))
            if written:
                await conn.execute(insert(customer_search_terms), written)
            await conn.execute(
                update(customers)
                .where(customers.c.id.in_(done))
                .values(terms_version=TERMS_VERSION)
            )
    return rows[-1].id if rows else None


async def _opened(
    conn: AsyncConnection, keyring: Keyring, row: Row[Any]
) -> tuple[TenantKeys, dict[str, str | None]] | None:
    """The tenant's keys and the customer's opened profile; None (counted, logged) when the
    master key does not open them."""
    try:
        keys = await keyring.tenant(conn, row.tenant_id)
        if keys is not None:
            return keys, _profile(keys, row)
    except CustomerKeysUnavailable:  # sealed under another master key than this one
        pass
    REINDEXED.labels("unopened").inc()
    log.error(
        "customer %s's search terms stay at version %d: its profile does not open with"
        " tenant %s's key; start the control plane with the master key it was sealed under",
        row.id, row.terms_version, row.tenant_id,
    )  # fmt: skip
    return None


async def keep_customers_reindexed(engine: AsyncEngine, keyring: Keyring) -> None:
    """The control plane's background task: a pass over the older customers, batch by batch,
    then one an hour (another instance or a corrected master key may leave some)."""
    while True:
        after: str | None = ""
        while after is not None:
            after = await reindex_customers(engine, keyring, after=after)
            await asyncio.sleep(REINDEX_PAUSE_S)
        await asyncio.sleep(REINDEX_IDLE_S)
