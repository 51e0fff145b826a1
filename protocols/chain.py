"""The journal hash chain.

Each journal record's ``hash`` is ``sha256(prev_hash ‖ canonical(seq, kind, ts, body))`` where
``prev_hash`` is the previous record's hash as 32 raw bytes and the first record follows
:data:`GENESIS`. Covering ``seq``, ``kind`` and ``ts`` as well as the body means a record cannot be
renumbered, relabelled or back-dated without breaking every later hash — on the appliance and in
the cloud replica alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from protocols.canonical import canonical_bytes

GENESIS = "0" * 64


def record_hash(*, prev_hash: str, seq: int, kind: str, ts: int, body: Mapping[str, object]) -> str:
    """The hash of one journal record given the hash before it."""
    digest = hashlib.sha256(bytes.fromhex(prev_hash))
    digest.update(canonical_bytes({"seq": seq, "kind": kind, "ts": ts, "body": body}))
    return digest.hexdigest()


def verify_link(
    *, prev_hash: str, seq: int, kind: str, ts: int, body: Mapping[str, object], claimed: str
) -> bool:
    """Whether ``claimed`` is the hash this record must have after ``prev_hash``."""
    return record_hash(prev_hash=prev_hash, seq=seq, kind=kind, ts=ts, body=body) == claimed
