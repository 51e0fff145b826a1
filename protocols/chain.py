"""The journal hash chain.

Each journal record's ``hash`` is ``sha256(prev_hash ‖ canonical(seq, kind, ts, body))`` where
``prev_hash`` is the previous record's hash as 32 raw bytes and the first record follows
:data:`GENESIS`. Covering ``seq``, ``kind`` and ``ts`` as well as the body means a record cannot be
renumbered, relabelled or back-dated without breaking every later hash — on the appliance and in
the cloud replica alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from protocols.canonical import canonical_text

GENESIS = "0" * 64


def envelope_bytes(*, seq: int, kind: str, ts: int, body_text: str) -> bytes:
    """``canonical({"seq", "kind", "ts", "body"})`` from the body's canonical text.

    Canonical JSON sorts keys, so the envelope is ``{"body":…,"kind":…,"seq":…,"ts":…}``; building
    it around the already-serialised body lets the cloud serialise each body once, both to hash it
    and to store it. ``tests/protocols`` checks this equals the canonical form of the envelope.
    """
    kind_text = json.dumps(kind, ensure_ascii=False)
    return f'{{"body":{body_text},"kind":{kind_text},"seq":{int(seq)},"ts":{int(ts)}}}'.encode()


def hash_envelope(prev_hash: str, envelope: bytes) -> str:
    """``sha256(prev_hash ‖ envelope)`` as hex."""
    digest = hashlib.sha256(bytes.fromhex(prev_hash))
    digest.update(envelope)
    return digest.hexdigest()


def record_hash(
    *,
    prev_hash: str,
    seq: int,
    kind: str,
    ts: int,
    body: Mapping[str, object],
    checked: bool = True,
) -> str:
    """The hash of one journal record given the hash before it."""
    body_text = canonical_text(body, checked=checked)
    return hash_envelope(prev_hash, envelope_bytes(seq=seq, kind=kind, ts=ts, body_text=body_text))


def verify_link(
    *, prev_hash: str, seq: int, kind: str, ts: int, body: Mapping[str, object], claimed: str
) -> bool:
    """Whether ``claimed`` is the hash this record must have after ``prev_hash``."""
    return record_hash(prev_hash=prev_hash, seq=seq, kind=kind, ts=ts, body=body) == claimed
