"""Typed, versioned messages of the MQTT contract (ARCHITECTURE.md, "MQTT contract").

Every payload is a JSON object with ``schema`` (what it is) and ``v`` (which version of it). A
receiver validates at its edge and refuses a version it does not speak rather than guessing: a
newer appliance talking to an older control plane must be visible, not silently misread.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocols.topics import Channel

HEX64 = r"^[0-9a-f]{64}$"
MAX_BATCH_RECORDS = 2000

Seq = Annotated[int, Field(ge=1)]
Millis = Annotated[int, Field(ge=0)]


class Message(BaseModel):
    """Base of every message: frozen, strict about unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)
    schema_name: ClassVar[str]
    channel: ClassVar[Channel]


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
    """One business event as the appliance committed it, with its place in the chain."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    seq: Seq
    kind: Annotated[str, Field(min_length=1, max_length=64)]
    ts: Millis
    prev_hash: Annotated[str, Field(pattern=HEX64)]
    hash: Annotated[str, Field(pattern=HEX64)]
    body: dict[str, Any]


class JournalBatch(Message):
    """Consecutive journal records, oldest first, sent at QoS 1."""

    schema_name = "sf.journal"
    channel = Channel.JOURNAL
    schema_: Literal["sf.journal"] = Field("sf.journal", alias="schema")
    v: Literal[1] = 1
    records: Annotated[list[JournalRecord], Field(min_length=1, max_length=MAX_BATCH_RECORDS)]
    sent_at: Millis = 0

    @field_validator("records")
    @classmethod
    def _consecutive(cls, records: list[JournalRecord]) -> list[JournalRecord]:
        for before, after in pairwise(records):
            if after.seq != before.seq + 1:
                raise ValueError(f"records must be consecutive: {before.seq} then {after.seq}")
        return records


class JournalAck(Message):
    """The cloud's answer: everything up to ``hwm`` is durable; optionally resend from a seq.

    ``hwm`` is the contiguous high-water mark, so an ack can never skip a gap. ``resend_from`` is
    set when the cloud saw a record beyond ``hwm + 1``. ``error`` names a refusal the appliance
    cannot fix by resending (a broken chain) so it stops hammering and raises an alarm instead.
    """

    schema_name = "sf.journal.ack"
    channel = Channel.JOURNAL_ACK
    schema_: Literal["sf.journal.ack"] = Field("sf.journal.ack", alias="schema")
    v: Literal[1] = 1
    hwm: Annotated[int, Field(ge=0)]
    head_hash: Annotated[str, Field(pattern=HEX64)]
    resend_from: Seq | None = None
    error: str | None = None


class State(Message):
    """What the appliance runs, retained so the console sees drift without asking."""

    schema_name = "sf.state"
    channel = Channel.STATE
    schema_: Literal["sf.state"] = Field("sf.state", alias="schema")
    v: Literal[1] = 1
    config_version: int = 0
    app_release: str = ""
    slot: str = ""
    peripherals: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Telemetry(Message):
    """Heartbeat and metrics at QoS 0: losing one is fine, the next one replaces it."""

    schema_name = "sf.telemetry"
    channel = Channel.TELEMETRY
    schema_: Literal["sf.telemetry"] = Field("sf.telemetry", alias="schema")
    v: Literal[1] = 1
    ts: Millis
    backlog: Annotated[int, Field(ge=0)] = 0
    last_seq: Annotated[int, Field(ge=0)] = 0
    lag_ms: Annotated[int, Field(ge=0)] | None = None
    metrics: dict[str, int | float] = Field(default_factory=dict)


class Event(Message):
    """Something that happened on the appliance worth an operator's eye."""

    schema_name = "sf.event"
    channel = Channel.EVENTS
    schema_: Literal["sf.event"] = Field("sf.event", alias="schema")
    v: Literal[1] = 1
    kind: str
    ts: Millis
    body: dict[str, Any] = Field(default_factory=dict)


class DesiredConfig(Message):
    """Desired configuration, retained, versioned."""

    schema_name = "sf.config"
    channel = Channel.CONFIG
    schema_: Literal["sf.config"] = Field("sf.config", alias="schema")
    v: Literal[1] = 1
    version: Annotated[int, Field(ge=1)]
    doc: dict[str, Any]


class DesiredRelease(Message):
    """Desired app release; the bundle itself travels over HTTPS."""

    schema_name = "sf.release"
    channel = Channel.RELEASE
    schema_: Literal["sf.release"] = Field("sf.release", alias="schema")
    v: Literal[1] = 1
    version: str
    url: str
    sha256: Annotated[str, Field(pattern=HEX64)]
    signature: str
    window: str | None = None


class Command(Message):
    """A remote command with an id the result refers to."""

    schema_name = "sf.cmd"
    channel = Channel.CMD
    schema_: Literal["sf.cmd"] = Field("sf.cmd", alias="schema")
    v: Literal[1] = 1
    id: str
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


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
