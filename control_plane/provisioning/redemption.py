"""Redeeming an enrolment: token (or typed code) + CSR -> a device with its certificate.

How `enrol` works (the order `provisioning.redemption` prescribes, one step tighter)
1. Hash the token (or typed code); on one connection, read the enrolment it names, with its
   store.
2. `claim_enrolment` checks the CSR and the lifecycle rules and names the device id.
3. The certificates (the register's, CN = device id, and the agent's, CN `<id>.agent`, one key)
   are signed in memory, then the same connection's transaction stores the
   claim (compare-and-set on `used_at IS NULL`), registers the device at the enrolment's store,
   and records the certificate. If another instance won the race, the transaction rolls back,
   the signed bytes are dropped unseen, and the decision is taken again on the re-read record.
   So a certificate is recorded and handed out if and only if its claim is durable. One
   connection and prepared statements (built once, values bound) because this is the hot path
   of a store's opening day: a second checkout cost a pool ping and a rollback on PostgreSQL,
   and rebuilding each statement cost its cache key.
4. The broker grants the device its own subtree before the answer leaves, so the appliance's
   first connection can subscribe (a failure is logged; the reconcile grants it later).
5. A replacement enrolment then retires the device it replaces (revocation, CRL rewrite, its
   broker grant withdrawn and its connection closed).
A retry by the same key after a lost answer skips the claim and gets a new certificate for the
same device id. Every refusal is counted by reason and logged before it reaches the router.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, Select, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.devices.tables import devices, stores, tenants
from control_plane.provisioning import metrics
from control_plane.provisioning.authority import FleetAuthority
from control_plane.provisioning.ledger import issued_values, to_ms
from control_plane.provisioning.lifecycle import retire_device
from control_plane.provisioning.service import enrolment_record, new_device_id, utc_now
from control_plane.provisioning.tables import enrolments, issued_certificates
from provisioning.ca import DeviceCertificates
from provisioning.enrolment import hash_token
from provisioning.errors import EnrolmentRefused, MalformedToken, TokenUnknown, TokenUsed
from provisioning.fallback_code import hash_fallback_code
from provisioning.redemption import Claim, claim_enrolment

log = logging.getLogger(__name__)
_CLAIM_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class EnrolmentAnswer:
    """What an appliance receives: who it is, its certificate chain, where to connect."""

    device_id: str
    chain_pem: bytes  # the register's certificate (CN = device id)
    agent_chain_pem: bytes  # the fleet agent's (CN `<device id>.agent`), same key
    broker_url: str
    ca_fingerprint: str
    config: dict[str, Any]
    retry: bool


def _refused(err: EnrolmentRefused, *, how: str) -> EnrolmentRefused:
    metrics.REFUSALS.labels(err.reason).inc()
    log.warning("enrolment by %s refused: %s (%s)", how, err.reason, err.detail or "")
    return err


async def enrol(
    *,
    engine: AsyncEngine,
    authority: FleetAuthority,
    csr_pem: bytes,
    token: str | None = None,
    fallback_code: str | None = None,
    client: str = "unknown",
    now: datetime | None = None,
) -> EnrolmentAnswer:
    """Redeem an enrolment with the appliance's CSR; raise the EnrolmentRefused saying why not."""
    started = time.perf_counter()
    moment = now or utc_now()
    how = "token" if token is not None else "code"
    try:
        if token is not None:
            query, digest = _BY_TOKEN, hash_token(token)
        elif fallback_code is not None:
            query, digest = _BY_CODE, hash_fallback_code(fallback_code)
            authority.code_attempts.check(client)
        else:
            raise MalformedToken("give the token from the QR code or the typed code")
        try:
            claim, row, issued = await _claim_and_issue(
                engine, authority, query=query, digest=digest, csr_pem=csr_pem, now=moment
            )
        except TokenUnknown:
            if fallback_code is not None:
                authority.code_attempts.failed(client)
            raise
    except EnrolmentRefused as err:
        raise _refused(err, how=how) from None
    metrics.CERTIFICATES_ISSUED.labels("enrolment").inc()
    await authority.broker_access.grant(claim.device_id)
    if row["replaces_device_id"] is not None:
        await retire_device(
            engine=engine,
            authority=authority,
            device_id=row["replaces_device_id"],
            now=moment,
            why=f"replaced by {claim.device_id}",
        )
    metrics.ENROLMENTS_REDEEMED.labels("retry" if claim.retry else "first").inc()
    log.info(
        "enrolment %s redeemed%s: device %s at %s/%s, certificates %x and %x (agent) until %s",
        row["id"],
        " again (same key)" if claim.retry else "",
        claim.device_id,
        row["tenant_id"],
        row["store_id"],
        issued.device.serial,
        issued.agent.serial,
        issued.device.not_after.isoformat(),
    )
    answer = EnrolmentAnswer(
        device_id=claim.device_id,
        chain_pem=issued.device.chain_pem,
        agent_chain_pem=issued.agent.chain_pem,
        broker_url=authority.settings.device_broker_url,
        ca_fingerprint=await authority.fingerprint(),
        config=_initial_config(row, device_id=claim.device_id),
        retry=claim.retry,
    )
    metrics.ENROL_SECONDS.observe(time.perf_counter() - started)
    return answer


_ENROLMENT_WITH_STORE = select(
    enrolments,
    stores.c.name.label("store_name"),
    stores.c.timezone,
    tenants.c.currency,
).select_from(
    enrolments.join(stores, stores.c.id == enrolments.c.store_id).join(
        tenants, tenants.c.id == enrolments.c.tenant_id
    )
)
_BY_TOKEN = _ENROLMENT_WITH_STORE.where(enrolments.c.token_hash == bindparam("digest"))
_BY_CODE = _ENROLMENT_WITH_STORE.where(enrolments.c.fallback_code_hash == bindparam("digest"))
_CLAIM = (
    update(enrolments)
    .where(enrolments.c.id == bindparam("enrolment_id"), enrolments.c.used_at.is_(None))
    .values(
        used_at=bindparam("claimed_at"),
        used_by_key=bindparam("key_sha256"),
        device_id=bindparam("claimed_by"),
        sealed_payload=None,
    )
)
_NEW_DEVICE = insert(devices)
_RECORD_CERTIFICATE = insert(issued_certificates)


async def _claim_and_issue(
    engine: AsyncEngine,
    authority: FleetAuthority,
    *,
    query: Select[Any],
    digest: str,
    csr_pem: bytes,
    now: datetime,
) -> tuple[Claim, RowMapping, DeviceCertificates]:
    """Decide, sign, and store claim + device + certificate record in one transaction.

    The certificate is signed in memory first and exists for nobody until the transaction that
    claims the enrolment (compare-and-set on `used_at IS NULL`) also records it: if another
    instance won the race, the transaction rolls back, the signed bytes are dropped unseen, and
    the decision is taken again on the re-read record.
    """
    for _ in range(_CLAIM_ATTEMPTS):
        try:
            # The read is not a lock: SQLite reads outside a transaction (pysqlite begins one at
            # the first write), PostgreSQL reads committed; the compare-and-set decides.
            async with authority.writing(), engine.begin() as conn:
                row = (await conn.execute(query, {"digest": digest})).mappings().first()
                if row is None:
                    raise TokenUnknown("no enrolment matches this code")
                claim = claim_enrolment(
                    enrolment_record(row),
                    csr_pem=csr_pem,
                    new_device_id=new_device_id(row["store_id"]),
                    now=now,
                )
                issued, records = await authority.sign_claim(claim, now=now)
                if not claim.retry:
                    await _persist_claim(conn, row=row, claim=claim, now=now)
                await conn.execute(_RECORD_CERTIFICATE, [issued_values(r) for r in records])
        except _LostRace:
            continue  # another instance redeemed it first: re-read and decide again
        return claim, row, issued
    raise TokenUsed("redeemed concurrently by another appliance")


class _LostRace(Exception):  # noqa: N818 - internal signal, never leaves this module
    """The compare-and-set changed no row: roll the transaction back and decide again."""


async def _persist_claim(
    conn: AsyncConnection, *, row: Mapping[Any, Any], claim: Claim, now: datetime
) -> None:
    """First use: compare-and-set on `used_at IS NULL`, then the device at its store."""
    result = await conn.execute(
        _CLAIM,
        {
            "enrolment_id": row["id"],
            "claimed_at": to_ms(now),
            "key_sha256": claim.record.used_by_key,
            "claimed_by": claim.device_id,
        },
    )
    if not result.rowcount:
        raise _LostRace
    await conn.execute(
        _NEW_DEVICE,
        {
            "id": claim.device_id,
            "tenant_id": row["tenant_id"],
            "store_id": row["store_id"],
            "register_name": row["register_name"],
            "created_at": to_ms(now),
        },
    )


def _initial_config(row: Mapping[Any, Any], *, device_id: str) -> dict[str, Any]:
    """The first config an appliance runs with, until the config service publishes its own."""
    return {
        "config_version": 0,
        "device_id": device_id,
        "tenant_id": row["tenant_id"],
        "store_id": row["store_id"],
        "register_name": row["register_name"],
        "store_name": row["store_name"],
        "timezone": row["timezone"],
        "currency": row["currency"],
    }
