"""A device's certificates after enrolment: list, renew before expiry, revoke on decommission.

Decommissioning revokes every certificate the device holds, rewrites the broker's CRL and deletes
the device's grant from the broker's access list, which closes its open connection at once (a
reconnect before the broker reloads the CRL gets nothing). The registry keeps the device row
(with `decommissioned_at`) so its replicated history stays where it was, attached to its store.
A device has two certificates per issue, both for its one key: the register's (CN = device id)
and the agent's (CN `<id>.agent`); renewal issues both, and an appliance enrolled before there
were two gets its agent certificate at its first renewal (which its agent asks for at once).
Renewal needs no token: the CSR's own signature proves possession of the key, and that key must
be the key of a current (unexpired, unrevoked) certificate of the same device. A device that
lost its key or let its certificate lapse enrols again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import devices
from control_plane.provisioning import metrics
from control_plane.provisioning.authority import FleetAuthority
from control_plane.provisioning.broker_access import Outcome
from control_plane.provisioning.errors import DeviceDecommissioned, DeviceNotFound, RenewalRefused
from control_plane.provisioning.ledger import from_ms, issued_values, to_ms
from control_plane.provisioning.tables import issued_certificates
from control_plane.tenancy import EVERY_TENANT, TenantScope
from provisioning.ca import RENEWAL_MARGIN, validate_csr
from provisioning.errors import EnrolmentRefused
from provisioning.keys import public_key_fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CertificateView:
    """One certificate of a device, as the API and `device-status` show it."""

    serial: str
    kind: str  # "device" or "agent"
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    reason: str | None
    renewal_due: bool


@dataclass(frozen=True, slots=True)
class Retirement:
    """What decommissioning did: when, which serials it revoked, where the CRL went, and
    whether the broker dropped the device's grant (and connection)."""

    device_id: str
    decommissioned_at: datetime
    revoked_serials: tuple[str, ...]
    crl_file: Path | None
    broker_access: Outcome


@dataclass(frozen=True, slots=True)
class Renewal:
    """A renewed certificate chain for the same key and device."""

    device_id: str
    chain_pem: bytes
    agent_chain_pem: bytes  # the agent's certificate (CN `<id>.agent`), renewed with it
    not_after: datetime


async def device_row(
    engine: AsyncEngine, device_id: str, *, scope: TenantScope = EVERY_TENANT
) -> RowMapping:
    """The device's registry row in scope, or DeviceNotFound (also for another tenant's)."""
    query = select(devices).where(devices.c.id == device_id, scope.where(devices.c.tenant_id))
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise DeviceNotFound(device_id)
    return row  # the registry row: tenant, store, register, decommissioned_at


async def device_certificates(
    *, engine: AsyncEngine, scope: TenantScope = EVERY_TENANT, device_id: str, now: datetime
) -> list[CertificateView]:
    """Every certificate issued to the device, newest expiry first."""
    await device_row(engine, device_id, scope=scope)
    query = (
        select(issued_certificates)
        .where(issued_certificates.c.device_id == device_id)
        .order_by(issued_certificates.c.not_after.desc())
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        CertificateView(
            serial=row["serial"],
            kind=row["kind"],
            not_before=from_ms(row["not_before"]),
            not_after=from_ms(row["not_after"]),
            revoked_at=None if row["revoked_at"] is None else from_ms(row["revoked_at"]),
            reason=row["reason"],
            renewal_due=row["revoked_at"] is None
            and now >= from_ms(row["not_after"]) - RENEWAL_MARGIN,
        )
        for row in rows
    ]


async def retire_device(
    *,
    engine: AsyncEngine,
    authority: FleetAuthority,
    device_id: str,
    now: datetime,
    why: str,
    reason: x509.ReasonFlags = x509.ReasonFlags.superseded,
) -> Retirement:
    """Mark the device decommissioned (once), revoke its live certificates, rewrite the CRL,
    and withdraw its broker grant.

    Idempotent: a second call revokes nothing new and keeps the first decommission time. The
    grant is withdrawn after the registry says decommissioned, so a reconcile running meanwhile
    can only agree; if the broker cannot be reached now, the reconcile withdraws it later.
    """
    async with engine.begin() as conn:
        await conn.execute(
            update(devices)
            .where(devices.c.id == device_id, devices.c.decommissioned_at.is_(None))
            .values(decommissioned_at=to_ms(now), online=False)
        )
        stamped = (
            await conn.execute(select(devices.c.decommissioned_at).where(devices.c.id == device_id))
        ).scalar_one()
        serials = (
            (
                await conn.execute(
                    select(issued_certificates.c.serial).where(
                        issued_certificates.c.device_id == device_id,
                        issued_certificates.c.revoked_at.is_(None),
                    )
                )
            )
            .scalars()
            .all()
        )
    crl_file = await authority.revoke([int(s, 16) for s in serials], reason=reason, now=now)
    withdrawn = await authority.broker_access.withdraw(device_id)
    log.warning(
        "device %s decommissioned (%s): revoked %d certificate(s) %s; CRL %s",
        device_id,
        why,
        len(serials),
        ", ".join(serials) or "-",
        crl_file or "not written (STOREFLEET_CA_CRL_FILE unset)",
    )
    return Retirement(
        device_id=device_id,
        decommissioned_at=from_ms(stamped),
        revoked_serials=tuple(serials),
        crl_file=crl_file,
        broker_access=withdrawn,
    )


async def decommission(
    *,
    engine: AsyncEngine,
    authority: FleetAuthority,
    scope: TenantScope = EVERY_TENANT,
    device_id: str,
    decommissioned_by: str,
    now: datetime,
) -> Retirement:
    """Take a device out of the fleet: cut from the broker at once, its certificates refused at
    TLS once the broker reloads the CRL."""
    await device_row(engine, device_id, scope=scope)
    return await retire_device(
        engine=engine,
        authority=authority,
        device_id=device_id,
        now=now,
        why=f"by {decommissioned_by}",
        reason=x509.ReasonFlags.cessation_of_operation,
    )


async def renew(
    *,
    engine: AsyncEngine,
    authority: FleetAuthority,
    device_id: str,
    csr_pem: bytes,
    now: datetime,
) -> Renewal:
    """A new certificate for the same device and key, while a current one is still valid."""
    try:
        device = await device_row(engine, device_id)
        if device["decommissioned_at"] is not None:
            raise DeviceDecommissioned(device_id)
        key = public_key_fingerprint(validate_csr(csr_pem).public_key())
        query = select(issued_certificates.c.serial).where(
            issued_certificates.c.device_id == device_id,
            issued_certificates.c.public_key_sha256 == key,
            issued_certificates.c.revoked_at.is_(None),
            issued_certificates.c.not_after > to_ms(now),
        )
        async with engine.connect() as conn:
            current = (await conn.execute(query)).first()
        if current is None:
            raise RenewalRefused(
                device_id, "no current certificate of this device is for the request's key"
            )
    except (EnrolmentRefused, RenewalRefused, DeviceDecommissioned) as err:
        metrics.REFUSALS.labels(err.reason).inc()
        log.warning("renewal of %s refused: %s (%s)", device_id, err.reason, err)
        raise
    issued, records = await authority.sign_renewal(csr_pem, device_id=device_id, now=now)
    async with authority.writing(), engine.begin() as conn:
        await conn.execute(insert(issued_certificates), [issued_values(r) for r in records])
    metrics.CERTIFICATES_ISSUED.labels("renewal").inc()
    log.info("device %s renewed: certificates %x and %x (agent) until %s", device_id,
             issued.device.serial, issued.agent.serial,
             issued.device.not_after.isoformat())  # fmt: skip
    return Renewal(
        device_id=device_id,
        chain_pem=issued.device.chain_pem,
        agent_chain_pem=issued.agent.chain_pem,
        not_after=issued.device.not_after,
    )
