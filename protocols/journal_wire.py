"""Journal records as wire bytes, built once at commit time.

The appliance stores each record's JSON text in the ledger when it commits, so a batch is
assembled by joining stored bytes instead of re-validating and re-serialising thousands of models
on every send (a 10,000-sale catch-up is a few joins, not 10,000 model dumps). The result is
exactly what :func:`protocols.codec.encode` would produce for the same :class:`JournalBatch`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from protocols.chain import record_hash


def record_json(
    *, seq: int, kind: str, ts: int, prev_hash: str, body: Mapping[str, object]
) -> tuple[str, str]:
    """The hash of the record and its wire JSON, in the field order the codec emits."""
    digest = record_hash(prev_hash=prev_hash, seq=seq, kind=kind, ts=ts, body=body)
    return digest, json.dumps(
        {"seq": seq, "kind": kind, "ts": ts, "prev_hash": prev_hash, "hash": digest, "body": body},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def batch_bytes(
    records: Sequence[str],
    *,
    sent_at: int,
    head_sig: str | None = None,
    cert_fp: str | None = None,
    cert: str | None = None,
) -> bytes:
    """A ``sf.journal`` v1 batch from records already in wire form, oldest first.

    ``head_sig``, ``cert_fp`` and ``cert`` (base64url, so nothing to escape) sign its head.
    """
    signed = (
        f',"head_sig":"{head_sig}","cert_fp":"{cert_fp}","cert":"{cert}"'
        if head_sig is not None
        else ""
    )
    return (
        '{"schema":"sf.journal","v":1,"records":['
        + ",".join(records)
        + f'],"sent_at":{int(sent_at)}{signed}}}'
    ).encode()
