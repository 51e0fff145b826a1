"""The local contract between the fleet agent and the register it supervises (sans-I/O).

How it works (the whole contract is in ``docs/agent-register-contract.md``): the agent listens on
a Unix stream socket; the register connects to it, says ``hello`` once and then a ``heartbeat``
every ``heartbeat_s`` (and at once when its health changes). The agent may send ``command``s on
the same connection; the register answers each with a ``result`` carrying the command's id.
Every message is one JSON object on one line (``\\n``-terminated UTF-8), at most
:data:`MAX_LINE` bytes, with ``type`` (what it is) and ``v`` (which version of it).

This module only turns messages into lines and lines into messages; who reads and writes the
socket is :mod:`edge.agent.register_link` (the agent's side) and :mod:`edge.register.agent_link`
(the register's). A line that is not one of these messages raises :class:`ContractError`, which
the reader counts and drops: a bad line never ends the connection.

    register → agent   hello      {pid, release, device_id, register_id}
    register → agent   heartbeat  {ts, ready, sales, replication, peripherals, lease?}
    agent → register   command    {id, name, args}
    register → agent   result     {id, ok, result, error}
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

#: One line of the contract at most: a heartbeat with a dozen devices is ~3 KiB; a command
#: result is bounded by the MQTT contract's 64 KiB message anyway.
MAX_LINE = 256 * 1024


class ContractError(ValueError):
    """A line that is not a message of this contract (malformed, unknown, too long)."""


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1


class Hello(_Message):
    """The register introduces itself once per connection."""

    type: Literal["hello"] = "hello"
    pid: int
    release: str = ""
    device_id: str = ""  # "" before first-boot enrolment
    register_id: str = ""


class SalesHealth(BaseModel):
    """How the register is selling: sales committed since it started, the journal's head."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    committed: int = 0
    last_seq: int = 0
    last_sale_ts: int | None = None  # ms since the epoch of the last committed sale


class ReplicationHealth(BaseModel):
    """How the journal reaches the cloud."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connected: bool = False
    backlog: int = 0
    acked_seq: int = 0
    lag_ms: int | None = None
    refusal: str | None = None  # the cloud refuses this journal: the alarm


class UpdateLease(BaseModel):
    """The register asks the agent not to switch releases now: a cart or a payment is open.

    ``expires_at`` (ms since the epoch) bounds it; the agent also gives up waiting after its own
    ``release_lease_max_s``, so a lease never blocks an update forever.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str = Field(min_length=1, max_length=64)  # who holds it: a register, a till
    reason: str = Field(max_length=200)  # what is open: "sale s-123 in payment"
    expires_at: int  # ms since the epoch


class Heartbeat(_Message):
    """The register is alive; ``ready`` once it can sell (kiosk serving, register started)."""

    type: Literal["heartbeat"] = "heartbeat"
    ts: int  # ms since the epoch
    ready: bool
    enrolled: bool = True
    sales: SalesHealth = Field(default_factory=SalesHealth)
    replication: ReplicationHealth = Field(default_factory=ReplicationHealth)
    peripherals: dict[str, dict[str, Any]] = Field(default_factory=dict)
    lease: UpdateLease | None = None  # held while a sale is open (release installs wait)


class CommandRequest(_Message):
    """A remote command the agent passes through to the register."""

    type: Literal["command"] = "command"
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict)


class CommandReply(_Message):
    """The register's answer to one :class:`CommandRequest`."""

    type: Literal["result"] = "result"
    id: str
    ok: bool
    result: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


LocalMessage = Annotated[
    Hello | Heartbeat | CommandRequest | CommandReply, Field(discriminator="type")
]
_ADAPTER: TypeAdapter[LocalMessage] = TypeAdapter(LocalMessage)


def encode_line(message: Hello | Heartbeat | CommandRequest | CommandReply) -> bytes:
    """One message as one ``\\n``-terminated line."""
    line = message.model_dump_json().encode() + b"\n"
    if len(line) > MAX_LINE:
        raise ContractError(f"a {message.type} of {len(line)} bytes exceeds {MAX_LINE}")
    return line


def decode_line(line: bytes) -> Hello | Heartbeat | CommandRequest | CommandReply:
    """The message of one line (with or without its ``\\n``), or :class:`ContractError`."""
    if len(line) > MAX_LINE:
        raise ContractError(f"a line of {len(line)} bytes exceeds {MAX_LINE}")
    try:
        raw = json.loads(line)
    except ValueError as err:
        raise ContractError(f"not JSON: {err}") from err
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise ContractError(f"{where}: {first['msg']}") from err
