"""Publish a release (verify, keep, record, audit) and read releases back.

How it works: :func:`publish` verifies the uploaded bundle with
:func:`protocols.release_bundle.read_bundle` — the one verifier the appliance runs too — against
the control plane's trusted key set: the signature over ``manifest.json`` by a trusted
``key_id``, then every file's size and sha256, and nothing unlisted. Only then is a row written
(version, sha256 and size of the whole file, key id, signature, minimum agent version, who and
when) in the same transaction as its audit entry, and the file renamed to its content name.
The same version with the same bytes again is answered with the existing release (a retried
upload); with other bytes it is refused (409): a published version never changes.

Refusals are counted in ``storefleet_release_refusals_total{reason}`` by the bundle format's
reason (``unknown_key``, ``bad_signature``, ``sha256_mismatch``, …) and audited.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import Counter
from sqlalchemy import RowMapping, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.operators import audit
from control_plane.releases.errors import (
    BundleRejected,
    ReleaseExists,
    ReleaseNotFound,
    ReleasesNotTrusted,
)
from control_plane.releases.store import BundleStore, Upload
from control_plane.releases.tables import releases
from protocols.release_bundle import BundleRefused, TrustedKeys, VerifiedBundle, read_bundle

log = logging.getLogger(__name__)

ACTION = "releases:publish"

REFUSALS = Counter(
    "storefleet_release_refusals_total",
    "Release uploads refused, by the bundle format's reason (or too_large, exists)",
    ["reason"],
)


@dataclass(frozen=True, kw_only=True, slots=True)
class ReleaseView:
    """A published release as the API shows it."""

    version: str
    sha256: str
    size: int
    key_id: str
    signature: str
    min_agent_version: str
    files: list[dict[str, object]]
    published_by: str
    published_at: int


def _view(row: RowMapping) -> ReleaseView:
    manifest = json.loads(row["manifest"])
    return ReleaseView(
        version=row["version"],
        sha256=row["sha256"],
        size=row["size"],
        key_id=row["key_id"],
        signature=row["signature"],
        min_agent_version=row["min_agent_version"],
        files=list(manifest.get("files", [])),
        published_by=row["published_by"],
        published_at=row["published_at"],
    )


def _verify(path: Path, trusted: TrustedKeys) -> VerifiedBundle:
    with path.open("rb") as stream:
        return read_bundle(stream, trusted)


async def publish(
    engine: AsyncEngine,
    *,
    store: BundleStore,
    trusted: TrustedKeys,
    upload: Upload,
    actor: audit.Actor,
    client: str,
    now_ms: int,
) -> tuple[ReleaseView, bool]:
    """Verify and keep ``upload``; returns the release and whether it is new."""
    try:
        if len(trusted) == 0:
            raise ReleasesNotTrusted("no release signing key is trusted; no bundle can verify")
        try:
            bundle = await asyncio.to_thread(_verify, upload.path, trusted)
        except BundleRefused as refused:
            REFUSALS.labels(refused.reason).inc()
            log.warning(
                "release upload refused (%s): %s; sign with a trusted key (%s) and build again",
                refused.reason,
                refused.detail,
                ", ".join(trusted.key_ids),
            )
            await audit.record_alone(
                engine,
                at=now_ms,
                actor=actor,
                action=ACTION,
                outcome="refused",
                target=f"sha256:{upload.sha256}",
                reason=f"bundle_{refused.reason}",
                client=client,
            )
            raise BundleRejected(refused) from refused
        manifest = bundle.manifest
        row = {
            "version": manifest.version,
            "sha256": upload.sha256,
            "size": upload.size,
            "key_id": bundle.signature.key_id,
            "signature": bundle.signature.signature,
            "min_agent_version": manifest.min_agent_version,
            "manifest": bundle.manifest_bytes.decode(),
            "published_by": actor.actor,
            "published_at": now_ms,
        }
        existing = await _find(engine, manifest.version)
        if existing is not None:
            return _same_or_conflict(existing, upload), False
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(releases).values(row))
                await audit.record(
                    conn,
                    at=now_ms,
                    actor=actor,
                    action=ACTION,
                    outcome="ok",
                    target=manifest.version,
                    client=client,
                    after={k: v for k, v in row.items() if k != "manifest"},
                )
        except IntegrityError:  # another upload of that version won the race
            raced = await _find(engine, manifest.version)
            if raced is None:
                raise
            return _same_or_conflict(raced, upload), False
        store.keep(upload)
        return _view(await _get_row(engine, manifest.version)), True
    finally:
        store.discard(upload)


def _same_or_conflict(existing: RowMapping, upload: Upload) -> ReleaseView:
    if existing["sha256"] != upload.sha256:
        REFUSALS.labels("exists").inc()
        raise ReleaseExists(
            f"release {existing['version']!r} is published already with sha256 "
            f"{existing['sha256']}; this bundle's is {upload.sha256}"
        )
    return _view(existing)


async def _find(engine: AsyncEngine, version: str) -> RowMapping | None:
    async with engine.connect() as conn:
        return (
            (await conn.execute(select(releases).where(releases.c.version == version)))
            .mappings()
            .first()
        )


async def _get_row(engine: AsyncEngine, version: str) -> RowMapping:
    row = await _find(engine, version)
    if row is None:
        raise ReleaseNotFound(version)
    return row


async def get_release(engine: AsyncEngine, version: str) -> ReleaseView:
    """One release, or :class:`ReleaseNotFound`."""
    return _view(await _get_row(engine, version))


async def list_releases(engine: AsyncEngine, *, limit: int = 100) -> list[ReleaseView]:
    """The newest releases first."""
    query = select(releases).order_by(releases.c.published_at.desc()).limit(limit)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [_view(row) for row in rows]
