"""Errors raised while reading the MQTT contract.

    ProtocolError                 anything that makes a message unusable; carries topic and reason
    ├── UnknownTopic              not a storefleet topic, or a channel this version does not know
    ├── PayloadTooLarge           bigger than the channel allows; dropped before parsing
    ├── MalformedMessage          not JSON, or JSON that does not fit the schema
    │   └── UnsupportedVersion    a known schema at a version this code does not speak
    └── NonCanonicalValue         a value that cannot be hashed the same way everywhere (a float)

Every receiving loop catches ``ProtocolError``, counts it by class name, logs ``reason`` and
drops the message: one bad publisher must never stop a worker.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """A message that cannot be used; ``reason`` says why in words an operator can act on."""

    def __init__(self, reason: str, *, topic: str | None = None) -> None:
        super().__init__(reason if topic is None else f"{reason} (topic {topic!r})")
        self.reason = reason
        self.topic = topic

    @property
    def metric_label(self) -> str:
        """Stable label for the ``dropped`` counters."""
        return _LABELS.get(type(self), "protocol_error")


class UnknownTopic(ProtocolError):  # noqa: N818 - named in the domain's words
    """The topic is not under ``sf/v1/d/{device}/`` or names an unknown channel."""


class PayloadTooLarge(ProtocolError):  # noqa: N818 - named in the domain's words
    """The payload exceeds the channel's limit."""

    def __init__(self, size: int, limit: int, *, topic: str | None = None) -> None:
        super().__init__(f"payload of {size} bytes exceeds the limit of {limit}", topic=topic)
        self.size = size
        self.limit = limit


class MalformedMessage(ProtocolError):  # noqa: N818 - named in the domain's words
    """Not JSON, or not the schema the channel expects."""


class UnsupportedVersion(MalformedMessage):
    """The schema is right but its version is not one this code speaks."""

    def __init__(self, schema: str, version: object, *, topic: str | None = None) -> None:
        super().__init__(
            f"schema {schema!r} version {version!r} is not supported; upgrade the receiver",
            topic=topic,
        )
        self.schema = schema
        self.version = version


class NonCanonicalValue(ProtocolError):  # noqa: N818 - named in the domain's words
    """A value with no single canonical JSON form (floats: money is never a float)."""


_LABELS: dict[type[ProtocolError], str] = {
    UnknownTopic: "unknown_topic",
    PayloadTooLarge: "too_large",
    MalformedMessage: "malformed",
    UnsupportedVersion: "unsupported_version",
    NonCanonicalValue: "non_canonical",
}
