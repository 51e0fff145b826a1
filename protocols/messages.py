"""Typed, versioned messages of the MQTT contract (ARCHITECTURE.md, "MQTT contract").

Every payload is a JSON object with ``schema`` (what it is) and ``v`` (which version of it). A
receiver validates at its edge and refuses a version it does not speak rather than guessing: a
newer appliance talking to an older control plane must be visible, not silently misread.

Fields are range-checked with the types of :mod:`protocols.limits`: every integer is strict (no
``"5"``, ``5.0`` or ``true``) and fits a 64-bit column; in the messages a device receives
(:data:`DOWNSTREAM`) every string and object has a maximum size too. A value outside them makes
the message malformed at decode, so a receiving loop counts and drops it instead of meeting a
number SQLite cannot bind (an ack with ``hwm`` ≥ 2^63 used to stop the register).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from protocols.limits import (
    INT64_MAX,
    INT64_MIN,
    MAP_ENTRIES,
    Count,
    Identifier,
    JsonObject,
    Label,
    Millis,
    Seq,
    Text,
    Url,
)
from protocols.topics import Channel

HEX64 = r"^[0-9a-f]{64}$"
MAX_BATCH_RECORDS = 2000
#: An Ed25519 signature is 88 characters of base64; room for a certificate chain or key id.
SIGNATURE_LENGTH = 4096

Hex64 = Annotated[str, Field(pattern=HEX64)]


def _metric_in_range(value: int | float) -> int | float:
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("an integer metric must fit in 64 bits")
    return value


#: A metric's value: a 64-bit integer or a finite float (no NaN, no infinity from ``1e400``).
#: A validator, not ``Int64 | float``: pydantic's float would take an oversized int as a float.
MetricValue = Annotated[
    Annotated[int, Field(strict=True)] | Annotated[float, Field(strict=True, allow_inf_nan=False)],
    AfterValidator(_metric_in_range),
]


class Message(BaseModel):
    """Base of every message: frozen, strict about unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)
    schema_name: ClassVar[str]
    channel: ClassVar[Channel]


# -- up: appliance to cloud. Integers bounded as everywhere; the receiver checks the rest -------


class Status(Message):
    """Presence, retained; the broker publishes the ``offline`` form as the last will."""

    schema_name = "sf.status"
    channel = Channel.STATUS
    schema_: Literal["sf.status"] = Field("sf.status", alias="schema")
    v: Literal[1] = 1
    state: Literal["online", "offline"]
    boot_id: str = ""
    versions: dict[str, str] = Field(default_factory=dict)
    ts: Millis = 0


class JournalRecord(BaseModel):
    """One business event as the appliance committed it, with its place in the chain.

    ``kind`` stays a string on the wire (not :class:`protocols.vocabulary.JournalKind`): a cloud
    older than the appliance stores a kind it does not know yet instead of refusing the batch.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    seq: Seq
    kind: Identifier
    ts: Millis
    prev_hash: Hex64
    hash: Hex64
    body: dict[str, Any]


def _absent(value: object) -> bool:
    return value is None


def _empty(value: object) -> bool:
    return not value


class JournalBatch(Message):
    """Consecutive journal records, oldest first, sent at QoS 1."""

    schema_name = "sf.journal"
    channel = Channel.JOURNAL
    schema_: Literal["sf.journal"] = Field("sf.journal", alias="schema")
    v: Literal[1] = 1
    records: Annotated[list[JournalRecord], Field(min_length=1, max_length=MAX_BATCH_RECORDS)]
    sent_at: Millis = 0
    # The signed head (protocols.journal_signing): the device's signature over (device id, seq,
    # hash) of the LAST record, the fingerprint of the certificate that signed and the
    # certificate itself (the cloud keeps it for auditors). Optional in v1: a device without
    # a certificate (development, a ledger-only bench) sends none; the cloud refuses an unsigned
    # batch from any device the CA has issued a certificate to.
    # Left out of the wire form when absent: an unsigned batch is byte for byte what v1 was.
    head_sig: Annotated[str, Field(min_length=1, max_length=1024)] | None = Field(
        None, exclude_if=_absent
    )
    cert_fp: Annotated[str, Field(min_length=43, max_length=43)] | None = Field(
        None, exclude_if=_absent
    )
    cert: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        None, exclude_if=_absent
    )

    @model_validator(mode="after")
    def _signed_whole(self) -> JournalBatch:
        given = (self.head_sig is not None, self.cert_fp is not None, self.cert is not None)
        if any(given) and not all(given):
            raise ValueError("head_sig, cert_fp and cert come together or not at all")
        return self

    @field_validator("records")
    @classmethod
    def _consecutive(cls, records: list[JournalRecord]) -> list[JournalRecord]:
        for before, after in pairwise(records):
            if after.seq != before.seq + 1:
                raise ValueError(f"records must be consecutive: {before.seq} then {after.seq}")
        return records


class State(Message):
    """What the appliance runs, retained so the console sees drift without asking."""

    schema_name = "sf.state"
    channel = Channel.STATE
    schema_: Literal["sf.state"] = Field("sf.state", alias="schema")
    v: Literal[1] = 1
    config_version: Count = 0
    app_release: str = ""
    slot: str = ""
    peripherals: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # sha256 of each top-level key of the applied configuration (protocols.store_config): the
    # console compares them with the effective desired document's for drift. Left out of the
    # wire when empty, so a device without a configuration sends what v1 always was.
    config_hashes: Annotated[dict[Identifier, Hex64], Field(max_length=MAP_ENTRIES)] = Field(
        default_factory=dict, exclude_if=_empty
    )


class Telemetry(Message):
    """Heartbeat and metrics at QoS 0: losing one is fine, the next one replaces it."""

    schema_name = "sf.telemetry"
    channel = Channel.TELEMETRY
    schema_: Literal["sf.telemetry"] = Field("sf.telemetry", alias="schema")
    v: Literal[1] = 1
    ts: Millis
    backlog: Count = 0
    last_seq: Count = 0
    lag_ms: Millis | None = None
    metrics: dict[str, MetricValue] = Field(default_factory=dict)


class Event(Message):
    """Something that happened on the appliance worth an operator's eye."""

    schema_name = "sf.event"
    channel = Channel.EVENTS
    schema_: Literal["sf.event"] = Field("sf.event", alias="schema")
    v: Literal[1] = 1
    kind: str
    ts: Millis
    body: dict[str, Any] = Field(default_factory=dict)


class CommandResult(Message):
    """The outcome of a remote command."""

    schema_name = "sf.cmd.result"
    channel = Channel.CMD_RESULT
    schema_: Literal["sf.cmd.result"] = Field("sf.cmd.result", alias="schema")
    v: Literal[1] = 1
    id: str
    ok: bool
    result: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


# -- down: cloud to appliance. A device acts on these, so every field is bounded. ------------------


class JournalAck(Message):
    """The cloud's answer: everything up to ``hwm`` is durable; optionally resend from a seq.

    ``hwm`` is the contiguous high-water mark, so an ack can never skip a gap. ``resend_from`` is
    set when the cloud saw a record beyond ``hwm + 1``. ``error`` names a refusal the appliance
    cannot fix by resending (a broken chain, a record the cloud cannot store) so it stops
    hammering and raises an alarm instead.
    """

    schema_name = "sf.journal.ack"
    channel = Channel.JOURNAL_ACK
    schema_: Literal["sf.journal.ack"] = Field("sf.journal.ack", alias="schema")
    v: Literal[1] = 1
    hwm: Count
    head_hash: Hex64
    resend_from: Seq | None = None
    error: Text | None = None


class DesiredConfig(Message):
    """Desired configuration, retained, versioned."""

    schema_name = "sf.config"
    channel = Channel.CONFIG
    schema_: Literal["sf.config"] = Field("sf.config", alias="schema")
    v: Literal[1] = 1
    version: Seq
    doc: JsonObject


class DesiredRelease(Message):
    """Desired app release; the bundle itself travels over HTTPS."""

    schema_name = "sf.release"
    channel = Channel.RELEASE
    schema_: Literal["sf.release"] = Field("sf.release", alias="schema")
    v: Literal[1] = 1
    version: Annotated[Label, Field(min_length=1)]
    url: Url
    sha256: Hex64
    signature: Annotated[str, Field(min_length=1, max_length=SIGNATURE_LENGTH, pattern=r"^[!-~]+$")]
    window: Label | None = None
    # Optional, left out of the wire form when absent (a message without them is v1 as it was):
    # the rollout this desire belongs to (echoed in release.progress), and an operator's audited
    # choice to install outside the maintenance window.
    rollout: Identifier | None = Field(None, exclude_if=_absent)
    force: Annotated[bool, Field(strict=True)] | None = Field(None, exclude_if=_absent)


class Command(Message):
    """A remote command with an id the result refers to.

    ``name`` stays a string on the wire (not :class:`protocols.vocabulary.CommandName`) so an
    appliance older than the console answers "unknown command" with the id instead of dropping it.
    """

    schema_name = "sf.cmd"
    channel = Channel.CMD
    schema_: Literal["sf.cmd"] = Field("sf.cmd", alias="schema")
    v: Literal[1] = 1
    id: Identifier
    name: Identifier
    args: JsonObject = Field(default_factory=dict)


#: The channels a device receives on, and so must never be able to stop it.
DOWNSTREAM: tuple[type[Message], ...] = (JournalAck, DesiredConfig, DesiredRelease, Command)

BY_CHANNEL: dict[Channel, type[Message]] = {
    cls.channel: cls
    for cls in (
        Status,
        JournalBatch,
        JournalAck,
        State,
        Telemetry,
        Event,
        DesiredConfig,
        DesiredRelease,
        Command,
        CommandResult,
    )
}
