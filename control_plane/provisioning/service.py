"""Enrolments for operators: create one for a store's register, list, revoke, reprint, replace.

An enrolment is stored as hashes of its token and typed code; its QR text is kept sealed only
while it is pending, so a lost sheet can be printed again (`enrolment_sheet`). Redeeming one is
`control_plane.provisioning.redemption.enrol`. Every lookup is kept to the caller's
:class:`~control_plane.tenancy.TenantScope`: another tenant's enrolment is not found.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, RowMapping, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.devices.tables import stores
from control_plane.provisioning import metrics
from control_plane.provisioning.authority import FleetAuthority
from control_plane.provisioning.errors import (
    EnrolmentNotFound,
    EnrolmentNotPending,
    StoreNotFound,
)
from control_plane.provisioning.ledger import from_ms, to_ms
from control_plane.provisioning.lifecycle import device_row
from control_plane.provisioning.sealing import SealedSecrets
from control_plane.provisioning.tables import enrolments
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.topics import DEVICE_ID_PATTERN
from provisioning.enrolment import (
    EnrolmentPayload,
    EnrolmentRecord,
    encode_qr,
    new_enrolment,
    parse_qr,
)
from provisioning.errors import InvalidDeviceId
from provisioning.qr import EnrolmentSheet

log = logging.getLogger(__name__)

EnrolmentState = Literal["pending", "used", "revoked", "expired"]
_CLAIM_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class EnrolmentView:
    """An enrolment as operators see it: no secrets, a state computed at read time."""

    id: str
    tenant_id: str
    store_id: str
    register_name: str
    replaces_device_id: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    used_at: datetime | None
    device_id: str | None
    state: EnrolmentState


@dataclass(frozen=True, slots=True)
class CreatedEnrolment:
    """A new enrolment with its secrets: show them once (QR, sheet), they are not stored."""

    view: EnrolmentView
    payload: EnrolmentPayload
    fallback_code: str

    @property
    def qr_text(self) -> str:
        """What the QR code holds."""
        return encode_qr(self.payload)


def utc_now() -> datetime:
    """The clock services use unless a test hands them one."""
    return datetime.now(UTC)


def _state(row: Mapping[Any, Any], now: datetime) -> EnrolmentState:
    if row["used_at"] is not None:
        return "used"
    if row["revoked_at"] is not None:
        return "revoked"
    if to_ms(now) >= row["expires_at"]:
        return "expired"
    return "pending"


def _optional(value: int | None) -> datetime | None:
    return None if value is None else from_ms(value)


def _view(row: Mapping[Any, Any], now: datetime) -> EnrolmentView:
    return EnrolmentView(
        id=row["id"],
        tenant_id=row["tenant_id"],
        store_id=row["store_id"],
        register_name=row["register_name"],
        replaces_device_id=row["replaces_device_id"],
        created_by=row["created_by"],
        created_at=from_ms(row["created_at"]),
        expires_at=from_ms(row["expires_at"]),
        revoked_at=_optional(row["revoked_at"]),
        used_at=_optional(row["used_at"]),
        device_id=row["device_id"],
        state=_state(row, now),
    )


def enrolment_record(row: RowMapping) -> EnrolmentRecord:
    return EnrolmentRecord(
        token_hash=row["token_hash"],
        fallback_code_hash=row["fallback_code_hash"],
        tenant_id=row["tenant_id"],
        store_id=row["store_id"],
        created_at=from_ms(row["created_at"]),
        expires_at=from_ms(row["expires_at"]),
        revoked_at=_optional(row["revoked_at"]),
        used_at=_optional(row["used_at"]),
        used_by_key=row["used_by_key"],
        device_id=row["device_id"],
    )


def new_device_id(store_id: str) -> str:
    """A fresh device id that names its store: `<store>-<8 hex>`, valid as CN and topic level."""
    stem = re.sub(r"[^a-z0-9-]+", "-", store_id.lower()).strip("-")[:50] or "device"
    device_id = f"{stem}-{secrets.token_hex(4)}"
    if not DEVICE_ID_PATTERN.fullmatch(device_id):  # the cleaning above should prevent it
        raise InvalidDeviceId(device_id, f"made for store {store_id!r}, not a valid topic level")
    return device_id


async def create_enrolment(
    *,
    engine: AsyncEngine,
    authority: FleetAuthority,
    scope: TenantScope = EVERY_TENANT,
    tenant_id: str,
    store_id: str,
    created_by: str,
    ttl: timedelta | None = None,
    register_name: str = "",
    replaces_device_id: str | None = None,
    now: datetime | None = None,
) -> CreatedEnrolment:
    """A single-use, expiring enrolment for one register of a store of the caller's tenant."""
    scope.claim(tenant_id, action="enrolments:write")
    moment = now or utc_now()
    async with engine.connect() as conn:
        store = (
            await conn.execute(
                select(stores.c.id).where(stores.c.id == store_id, stores.c.tenant_id == tenant_id)
            )
        ).first()
    if store is None:
        raise StoreNotFound(store_id, tenant_id)
    made = new_enrolment(
        tenant_id=tenant_id,
        store_id=store_id,
        control_plane_url=authority.settings.public_url,
        ca_fingerprint=await authority.fingerprint(),
        now=moment,
        ttl=ttl or authority.settings.enrolment_ttl,
    )
    enrolment_id = f"enr-{secrets.token_hex(8)}"
    sealed = authority.sealer.seal(
        SealedSecrets(qr_text=encode_qr(made.payload), fallback_code=made.fallback_code),
        enrolment_id=enrolment_id,
    )
    values = {
        "id": enrolment_id,
        "token_hash": made.record.token_hash,
        "fallback_code_hash": made.record.fallback_code_hash,
        "tenant_id": tenant_id,
        "store_id": store_id,
        "register_name": register_name,
        "replaces_device_id": replaces_device_id,
        "created_by": created_by,
        "created_at": to_ms(moment),
        "expires_at": to_ms(made.record.expires_at),
        "revoked_at": None,
        "used_at": None,
        "used_by_key": None,
        "device_id": None,
        "sealed_payload": sealed,
    }
    async with engine.begin() as conn:
        await conn.execute(insert(enrolments).values(**values))
    metrics.ENROLMENTS_CREATED.labels("replacement" if replaces_device_id else "new").inc()
    log.info(
        "enrolment %s created by %s for store %s/%s, expires %s",
        enrolment_id,
        created_by,
        tenant_id,
        store_id,
        made.record.expires_at.isoformat(),
    )
    view = _view(values, moment)
    return CreatedEnrolment(view=view, payload=made.payload, fallback_code=made.fallback_code)


async def list_enrolments(
    *,
    engine: AsyncEngine,
    scope: TenantScope = EVERY_TENANT,
    store_id: str | None = None,
    state: EnrolmentState | None = None,
    limit: int = 500,
    now: datetime | None = None,
) -> list[EnrolmentView]:
    """Enrolments in scope, newest first (at most `limit`), optionally of one store and state."""
    moment = now or utc_now()
    query = (
        select(enrolments)
        .where(scope.where(enrolments.c.tenant_id))
        .order_by(enrolments.c.created_at.desc(), enrolments.c.id)
        .limit(limit)
    )
    if store_id is not None:
        query = query.where(enrolments.c.store_id == store_id)
    if state is not None:
        query = query.where(*_STATE_FILTERS[state](to_ms(moment)))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [_view(row, moment) for row in rows]


# The same precedence as `_state`: used, then revoked, then expired, else pending.
_STATE_FILTERS: dict[EnrolmentState, Callable[[int], tuple[ColumnElement[bool], ...]]] = {
    "used": lambda now: (enrolments.c.used_at.is_not(None),),
    "revoked": lambda now: (enrolments.c.used_at.is_(None), enrolments.c.revoked_at.is_not(None)),
    "expired": lambda now: (
        enrolments.c.used_at.is_(None),
        enrolments.c.revoked_at.is_(None),
        enrolments.c.expires_at <= now,
    ),
    "pending": lambda now: (
        enrolments.c.used_at.is_(None),
        enrolments.c.revoked_at.is_(None),
        enrolments.c.expires_at > now,
    ),
}


async def _get(conn: AsyncConnection, enrolment_id: str, scope: TenantScope) -> RowMapping:
    """The enrolment in scope, or EnrolmentNotFound (also for another tenant's)."""
    query = select(enrolments).where(
        enrolments.c.id == enrolment_id, scope.where(enrolments.c.tenant_id)
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise EnrolmentNotFound(enrolment_id)
    return row


async def get_enrolment(
    *,
    engine: AsyncEngine,
    scope: TenantScope = EVERY_TENANT,
    enrolment_id: str,
    now: datetime | None = None,
) -> EnrolmentView:
    """One enrolment or EnrolmentNotFound."""
    async with engine.connect() as conn:
        return _view(await _get(conn, enrolment_id, scope), now or utc_now())


async def revoke_enrolment(
    *,
    engine: AsyncEngine,
    scope: TenantScope = EVERY_TENANT,
    enrolment_id: str,
    revoked_by: str,
    now: datetime | None = None,
) -> EnrolmentView:
    """Cancel a pending enrolment (a lost sheet); revoking twice is a no-op."""
    moment = now or utc_now()
    async with engine.begin() as conn:
        row = await _get(conn, enrolment_id, scope)
        state = _state(row, moment)
        if state == "revoked":
            return _view(row, moment)
        if state != "pending":
            raise EnrolmentNotPending(enrolment_id, state)
        result = await conn.execute(
            update(enrolments)
            .where(enrolments.c.id == enrolment_id, enrolments.c.used_at.is_(None))
            .values(revoked_at=to_ms(moment), sealed_payload=None)
        )
        if not result.rowcount:  # redeemed between the read and the update
            raise EnrolmentNotPending(enrolment_id, "used")
        row = await _get(conn, enrolment_id, scope)
    log.info("enrolment %s revoked by %s", enrolment_id, revoked_by)
    return _view(row, moment)


async def enrolment_secrets(
    *,
    engine: AsyncEngine,
    authority: FleetAuthority,
    scope: TenantScope = EVERY_TENANT,
    enrolment_id: str,
    now: datetime | None = None,
) -> tuple[EnrolmentView, EnrolmentPayload, str]:
    """The view, QR payload and fallback code of a pending enrolment, to print its sheet again."""
    moment = now or utc_now()
    async with engine.connect() as conn:
        row = await _get(conn, enrolment_id, scope)
    view = _view(row, moment)
    if view.state != "pending" or row["sealed_payload"] is None:
        raise EnrolmentNotPending(enrolment_id, view.state)
    opened = authority.sealer.open(row["sealed_payload"], enrolment_id=enrolment_id)
    return view, parse_qr(opened.qr_text), opened.fallback_code


async def enrolment_sheet(
    *,
    engine: AsyncEngine,
    authority: FleetAuthority,
    scope: TenantScope = EVERY_TENANT,
    enrolment_id: str,
    now: datetime | None = None,
) -> EnrolmentSheet:
    """What the printed sheet of a pending enrolment shows (QR, code, store, expiry)."""
    view, payload, code = await enrolment_secrets(
        engine=engine, authority=authority, scope=scope, enrolment_id=enrolment_id, now=now
    )
    async with engine.connect() as conn:
        name = (
            await conn.execute(select(stores.c.name).where(stores.c.id == view.store_id))
        ).scalar_one()
    if view.register_name:
        name = f"{name} — {view.register_name}"
    return EnrolmentSheet(
        store_name=name, payload=payload, fallback_code=code, expires_at=view.expires_at
    )


async def replace(
    *,
    engine: AsyncEngine,
    authority: FleetAuthority,
    scope: TenantScope = EVERY_TENANT,
    device_id: str,
    created_by: str,
    ttl: timedelta | None = None,
    now: datetime | None = None,
) -> CreatedEnrolment:
    """An enrolment for a new appliance to take `device_id`'s register at the same store.

    The old device keeps working until the new one enrols (its unsent sales can still drain);
    at that moment it is decommissioned and its certificates revoked. Its history stays in the
    store's records under its own device id.
    """
    old = await device_row(engine, device_id, scope=scope)
    return await create_enrolment(
        engine=engine,
        authority=authority,
        scope=scope,
        tenant_id=old["tenant_id"],
        store_id=old["store_id"],
        created_by=created_by,
        ttl=ttl,
        register_name=old["register_name"],
        replaces_device_id=device_id,
        now=now,
    )
