"""An auditor's check of the cloud's copy of a device's journal, trusting only the fleet root.

Why: the cloud's database is run by the platform; a fiscal auditor must be able to show a
store's history is what its register signed without trusting the control plane, the registry or
whoever can write to that database. So this reads only the stored records, the stored heads and
the stored certificates, and believes only the CA root given to it:

1. every stored record continues the chain from the genesis (``prev_hash`` link and
   ``hash = H(prev_hash ‖ envelope)`` recomputed from the stored body);
2. every stored head names a stored record with the same hash, and its certificate chain
   (leaf, issuing CA, as the device sent it) leads to the root by signatures, names the device
   and has ``cert_fp`` as its fingerprint, and the head signature verifies under its key;
3. the report says up to which seq the history is signed, and how many records follow the last
   signed head (records stored before signing existed, or a certless development device).

Run: ``storefleet journal verify --ca-root root.crt.pem [--device DEVICE] [--database-url URL]``
(:mod:`control_plane.ingest.journal_cli`: every device by default, exit 1 when anything fails to
verify, 2 when the check cannot run), or ``python -m control_plane.ingest.journal_audit
--database-url URL --ca-root root.pem --device DEVICE`` for one device's report as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from control_plane.ingest.tables import journal, journal_certificates, journal_heads
from protocols import journal_signing
from protocols.chain import GENESIS, envelope_bytes, hash_envelope
from protocols.journal_signing import HeadRefused
from provisioning.device_keys import common_name
from provisioning.errors import DeviceIdentityError


@dataclass
class AuditReport:
    """What the stored copy proves; ``problems`` empty means every check passed."""

    device_id: str
    records: int = 0
    heads_verified: int = 0
    signed_through: int = 0
    unsigned_tail: int = 0
    certificates: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every stored record and head verified."""
        return not self.problems


def _chain_problem(chain: Sequence[x509.Certificate], root: x509.Certificate) -> str | None:
    """Why ``chain`` (leaf first) does not lead to ``root`` by signatures, or None."""
    for child, issuer in zip(chain, [*chain[1:], root], strict=True):
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as err:
            return f"certificate {child.serial_number:x} is not signed by its issuer ({err})"
        if issuer is not root:
            constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints)
            if not constraints.value.ca:
                return f"certificate {issuer.serial_number:x} is not a CA"
    return None


async def verify_journal(
    engine: AsyncEngine, *, device_id: str, ca_root: x509.Certificate
) -> AuditReport:
    """Re-verify ``device_id``'s stored journal and signed heads against ``ca_root`` only."""
    report = AuditReport(device_id=device_id)
    async with engine.connect() as conn:
        records = (
            await conn.execute(
                select(journal.c.seq, journal.c.kind, journal.c.ts)
                .add_columns(journal.c.prev_hash, journal.c.hash, journal.c.body)
                .where(journal.c.device_id == device_id)
                .order_by(journal.c.seq)
            )
        ).all()
        heads = (
            await conn.execute(
                select(journal_heads, journal_certificates.c.der)
                .select_from(
                    journal_heads.outerjoin(
                        journal_certificates,
                        journal_certificates.c.fingerprint == journal_heads.c.cert_fp,
                    )
                )
                .where(journal_heads.c.device_id == device_id)
                .order_by(journal_heads.c.seq)
            )
        ).all()
    hashes: dict[int, str] = {}
    previous, expected_seq = GENESIS, 1
    for row in records:
        report.records += 1
        if row.seq != expected_seq or row.prev_hash != previous:
            report.problems.append(f"seq {row.seq}: does not continue the chain")
        envelope = envelope_bytes(seq=row.seq, kind=row.kind, ts=row.ts, body_text=row.body)
        if hash_envelope(row.prev_hash, envelope) != row.hash:
            report.problems.append(f"seq {row.seq}: hash does not match the stored record")
        hashes[row.seq] = row.hash
        previous, expected_seq = row.hash, row.seq + 1
    trusted: dict[str, x509.Certificate] = {}
    for head in heads:
        problem = _head_problem(head, hashes, trusted, ca_root=ca_root, device_id=device_id)
        if problem is not None:
            report.problems.append(f"head at seq {head.seq}: {problem}")
            continue
        report.heads_verified += 1
        report.signed_through = max(report.signed_through, head.seq)
    report.certificates = sorted(trusted)
    report.unsigned_tail = sum(1 for seq in hashes if seq > report.signed_through)
    return report


def _head_problem(
    head: Row[Any],
    hashes: dict[int, str],
    trusted: dict[str, x509.Certificate],
    *,
    ca_root: x509.Certificate,
    device_id: str,
) -> str | None:
    seq, record_hash, fingerprint, der = head.seq, head.hash, head.cert_fp, head.der
    if hashes.get(seq) != record_hash:
        return "names a record hash the stored journal does not hold"
    leaf = trusted.get(fingerprint)
    if leaf is None:
        if der is None:
            return f"its certificate {fingerprint} is not stored"
        try:
            chain = journal_signing.chain_from_text(der)
        except HeadRefused as err:
            return err.detail
        if not journal_signing.fingerprint_matches(chain[0], fingerprint):
            return "the stored certificate is not the one its fingerprint names"
        why = _chain_problem(chain, ca_root)
        if why is not None:
            return why
        try:
            if common_name(chain[0]) != device_id:
                return f"the certificate is {common_name(chain[0])!r}'s"
        except DeviceIdentityError:
            return "the certificate names no device"
        leaf = trusted[fingerprint] = chain[0]
    try:
        journal_signing.verify(
            public_key=leaf.public_key(),
            device_id=device_id,
            seq=seq,
            record_hash=record_hash,
            head_sig=head.head_sig,
        )
    except HeadRefused as err:
        return err.detail
    return None


async def _main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--ca-root", required=True, help="PEM file of the fleet CA's root")
    parser.add_argument("--device", required=True)
    args = parser.parse_args(argv)
    root = x509.load_pem_x509_certificate(Path(args.ca_root).read_bytes())  # noqa: ASYNC240
    engine = create_async_engine(args.database_url)
    try:
        report = await verify_journal(engine, device_id=args.device, ca_root=root)
    finally:
        await engine.dispose()
    sys.stdout.write(json.dumps(asdict(report) | {"ok": report.ok}, indent=2) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(sys.argv[1:])))
