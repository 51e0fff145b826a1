"""The cloud's check of a signed journal head, before anything of the batch is stored.

Why: the broker's ACL is the only thing binding a topic to a device, and the embedded
development broker has none, so a consistent chain published on a device's topic by anyone was
stored as that device's history. Now a batch's head ``(device_id, seq, hash)`` of its last
record must carry the device's signature (``protocols.journal_signing``) when the CA has issued
the device a certificate:

* the certificate the batch names (``cert_fp``) and carries (``cert``) must be one the CA
  issued to THIS device for this key (serial and key hash in ``issued_certificates``, through
  the registry look-up of :class:`~control_plane.devices.device_auth.DeviceVerifier`, kept per
  device for its ``registry_cache_seconds``) and not revoked. A renewed certificate (same
  device, new serial) verifies at once, and a superseded one still verifies, so batches in flight
  across a renewal are not refused; a replacement appliance is a new device with its own
  certificates, and the old device's stored history keeps its own;
* the signature must verify under that certificate's key.

A device with no certificate (registered directly: development, a ledger-only bench) may still
send unsigned batches; a device with one may not. A refusal is counted by reason
(``storefleet_ingest_heads_refused_total``), flags the device with the reason and is the ack's
``error``. The signature and certificate are kept with the batch head (``journal_heads``,
``journal_certificates``) for :mod:`control_plane.ingest.journal_audit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from cryptography import x509
from prometheus_client import Counter
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.devices.device_auth import DeviceVerifier
from control_plane.ingest.tables import journal_certificates, journal_heads
from protocols import journal_signing
from protocols.journal_signing import HeadRefused
from protocols.messages import JournalBatch
from provisioning.device_keys import common_name
from provisioning.errors import DeviceIdentityError
from provisioning.keys import public_key_fingerprint

HEADS_REFUSED = Counter(
    "storefleet_ingest_heads_refused_total",
    "Journal batches refused because their signed head proves nothing, by reason",
    ["reason"],
)
HEADS_VERIFIED = Counter(
    "storefleet_ingest_heads_verified_total", "Journal batch heads whose signature verified"
)


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A verified head, to be stored with the batch if its last record is stored."""

    seq: int
    hash: str
    head_sig: str
    fingerprint: str
    serial: str
    chain: str


@dataclass(frozen=True, slots=True)
class _Parsed:
    leaf: x509.Certificate
    serial: str
    key_sha256: str
    common_name: str


class HeadVerifier:
    """Head checks for one engine: the registry look-up of device auth, parsed certificates."""

    def __init__(self, engine: AsyncEngine, *, registry_cache_seconds: float = 5.0) -> None:
        self.registry = DeviceVerifier(engine=engine, registry_cache_seconds=registry_cache_seconds)
        self._parsed: dict[str, _Parsed] = {}
        #: fingerprints whose certificate row is committed: no insert attempted again
        self.stored_certificates: set[str] = set()

    def _certificate(self, text: str, fingerprint: str) -> _Parsed:
        kept = self._parsed.get(text)
        if kept is not None:
            return kept
        leaf = journal_signing.chain_from_text(text)[0]
        if not journal_signing.fingerprint_matches(leaf, fingerprint):
            raise HeadRefused("malformed", "cert_fp is not the fingerprint of the certificate sent")
        try:
            name = common_name(leaf)
        except DeviceIdentityError as err:
            raise HeadRefused("unknown_certificate", "the certificate names no device") from err
        parsed = _Parsed(
            leaf=leaf,
            serial=format(leaf.serial_number, "x"),
            key_sha256=public_key_fingerprint(leaf.public_key()),
            common_name=name,
        )
        if len(self._parsed) >= 10_000:
            self._parsed.clear()  # a fleet's worth; refilled one batch each
        self._parsed[text] = parsed
        return parsed

    async def check(self, device_id: str, batch: JournalBatch) -> SignedHead | None:
        """The verified head of ``batch``; None if unsigned from a device without certificate.

        Raises :class:`HeadRefused` for anything else. An unknown device is left to the ingest
        (it answers ``UnknownDevice``).
        """
        last = batch.records[-1]
        if batch.head_sig is None or batch.cert_fp is None or batch.cert is None:
            # the device-auth look-up, shared; serial None matches the one row of a device
            # without certificates, so its kept rows serve its next unsigned batches too
            rows = await self.registry._rows(device_id, None)  # type: ignore[arg-type]
            if any(row["serial"] is not None for row in rows):
                raise HeadRefused(
                    "unsigned",
                    f"batch up to seq {last.seq} is unsigned but the device has a certificate",
                )
            return None
        parsed = self._certificate(batch.cert, batch.cert_fp)
        rows = await self.registry._rows(device_id, parsed.serial)
        if not rows:
            return None
        mine = next((r for r in rows if r["serial"] == parsed.serial), None)
        if (
            mine is None
            or parsed.common_name != device_id
            or mine["public_key_sha256"] != parsed.key_sha256
        ):
            raise HeadRefused(
                "unknown_certificate",
                f"certificate {parsed.serial} was not issued to device {device_id!r} for its key",
            )
        if mine["revoked_at"] is not None:
            raise HeadRefused("revoked", f"certificate {parsed.serial} of {device_id!r} is revoked")
        journal_signing.verify(
            public_key=parsed.leaf.public_key(),
            device_id=device_id,
            seq=last.seq,
            record_hash=last.hash,
            head_sig=batch.head_sig,
        )
        HEADS_VERIFIED.inc()
        return SignedHead(
            seq=last.seq,
            hash=last.hash,
            head_sig=batch.head_sig,
            fingerprint=batch.cert_fp,
            serial=parsed.serial,
            chain=batch.cert,
        )


_VERIFIERS: WeakKeyDictionary[AsyncEngine, HeadVerifier] = WeakKeyDictionary()


def verifier_for(engine: AsyncEngine) -> HeadVerifier:
    """The engine's head verifier (one per engine: its caches serve every batch)."""
    verifier = _VERIFIERS.get(engine)
    if verifier is None:
        verifier = _VERIFIERS[engine] = HeadVerifier(engine)
    return verifier


async def store_head(
    conn: AsyncConnection,
    *,
    device_id: str,
    head: SignedHead,
    now_ms: int,
    known_certificate: bool,
) -> None:
    """Keep the signature with the stored head, and its certificate once."""
    if not known_certificate:
        values: dict[str, Any] = {
            "fingerprint": head.fingerprint,
            "device_id": device_id,
            "serial": head.serial,
            "der": head.chain,
            "first_seen_at": now_ms,
        }
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        await conn.execute(
            dialect.insert(journal_certificates).values(**values).on_conflict_do_nothing()
        )
    await conn.execute(
        journal_heads.insert().values(
            device_id=device_id,
            seq=head.seq,
            hash=head.hash,
            head_sig=head.head_sig,
            cert_fp=head.fingerprint,
            received_at=now_ms,
        )
    )
