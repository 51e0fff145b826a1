"""Bytes on a topic to a typed message, and back.

``decode`` never raises anything but :class:`~protocols.errors.ProtocolError`: whatever a
publisher sends, the receiving loop gets either a message or a typed reason to drop it. The size
check comes first so a huge payload is refused before any parsing work is spent on it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from protocols.errors import MalformedMessage, PayloadTooLarge, UnsupportedVersion
from protocols.messages import BY_CHANNEL, Message
from protocols.topics import Channel, TopicAddress, parse_topic

M = TypeVar("M", bound=Message)

#: Largest payload per channel. Journal batches are the only bulky messages; everything else is
#: small, and bulk data (bundles, logs, catalogs) travels over HTTPS, never MQTT.
DEFAULT_LIMIT = 64 * 1024
LIMITS: dict[Channel, int] = {Channel.JOURNAL: 4 * 1024 * 1024, Channel.CONFIG: 1024 * 1024}


@dataclass(frozen=True, slots=True)
class Inbound:
    """A decoded message and the address it arrived on."""

    address: TopicAddress
    message: Message


def encode(message: Message) -> bytes:
    """The wire form of ``message``: compact JSON with ``schema`` and ``v`` first."""
    return message.model_dump_json(by_alias=True).encode()


#: Channels whose payloads are hashed or hold money: a float there has no canonical form.
NO_FLOATS = frozenset({Channel.JOURNAL})


#: A JSON escape of a UTF-16 surrogate: legal JSON, but alone it is not a character and has no
#: UTF-8 form, so a body holding one could be neither hashed nor re-sent. Checked only when seen.
_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")


def _has_lone_surrogate(raw: object) -> bool:
    try:
        json.dumps(raw, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def _refuse_float(text: str) -> Any:
    raise MalformedMessage(f"float {text} is not allowed: money is minor units or a string")


def decode_payload(
    cls: type[M], payload: bytes, *, topic: str | None = None, floats: bool = True
) -> M:
    """Validate ``payload`` as ``cls``, mapping every failure to a :class:`ProtocolError`."""
    try:
        raw: Any = (
            json.loads(payload)
            if floats
            else json.loads(payload, parse_float=_refuse_float, parse_constant=_refuse_float)
        )
    except MalformedMessage as err:
        raise MalformedMessage(err.reason, topic=topic) from err
    except (ValueError, RecursionError) as err:  # JSONDecodeError, bad UTF-8, huge integers
        raise MalformedMessage(f"payload is not JSON: {err}", topic=topic) from err
    if not isinstance(raw, dict):
        raise MalformedMessage("payload is not a JSON object", topic=topic)
    schema = raw.get("schema")
    if schema != cls.schema_name:
        raise MalformedMessage(f"expected schema {cls.schema_name!r}, got {schema!r}", topic=topic)
    version = raw.get("v")
    if type(version) is not int or version != 1:  # JSON true is not version 1
        raise UnsupportedVersion(cls.schema_name, version, topic=topic)
    if _SURROGATE_ESCAPE.search(payload) and _has_lone_surrogate(raw):
        raise MalformedMessage("payload holds a lone UTF-16 surrogate", topic=topic)
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "$"
        raise MalformedMessage(
            f"{cls.schema_name} invalid at {where}: {first['msg']}", topic=topic
        ) from err


def decode(topic: str, payload: bytes) -> Inbound:
    """Decode ``payload`` received on ``topic``."""
    address = parse_topic(topic)
    limit = LIMITS.get(address.channel, DEFAULT_LIMIT)
    if len(payload) > limit:
        raise PayloadTooLarge(len(payload), limit, topic=topic)
    message = decode_payload(
        BY_CHANNEL[address.channel],
        payload,
        topic=topic,
        floats=address.channel not in NO_FLOATS,
    )
    return Inbound(address=address, message=message)
