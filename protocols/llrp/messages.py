"""The LLRP messages of our subset as frozen dataclasses, with their type numbers (16.1).

Every message carries ``message_id``: a response echoes the id of its request (spec 4.2.1),
which is how the client pairs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.llrp.parameters import (
    EventNotificationState,
    Extra,
    GeneralDeviceCapabilities,
    KeepaliveSpec,
    LlrpStatus,
    ROReportSpec,
)
from protocols.llrp.reports import ReaderEventNotificationData, TagReportData
from protocols.llrp.rospec import ROSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """Base of every message."""

    message_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GetReaderCapabilities(Message):
    """Ask what the reader can do; ``requested_data`` 0 = all, 1 = general device."""

    requested_data: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GetReaderCapabilitiesResponse(Message):
    status: LlrpStatus = field(default_factory=LlrpStatus)
    general: GeneralDeviceCapabilities | None = None
    extra: Extra = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SetReaderConfig(Message):
    reset_to_factory_default: bool = False
    events: tuple[EventNotificationState, ...] | None = None
    report: ROReportSpec | None = None
    keepalive: KeepaliveSpec | None = None
    extra: Extra = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class _StatusOnly(Message):
    status: LlrpStatus = field(default_factory=LlrpStatus)


@dataclass(frozen=True, slots=True, kw_only=True)
class _ROSpecId(Message):
    rospec_id: int = 0  # 0 means "all ROSpecs" for DELETE, ENABLE, DISABLE


@dataclass(frozen=True, slots=True, kw_only=True)
class SetReaderConfigResponse(_StatusOnly):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class AddROSpec(Message):
    rospec: ROSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class AddROSpecResponse(_StatusOnly):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteROSpec(_ROSpecId):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteROSpecResponse(_StatusOnly):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class StartROSpec(_ROSpecId):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class StartROSpecResponse(_StatusOnly):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class StopROSpec(_ROSpecId):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class StopROSpecResponse(_StatusOnly):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class EnableROSpec(_ROSpecId):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class EnableROSpecResponse(_StatusOnly):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseConnection(Message):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseConnectionResponse(_StatusOnly):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorMessage(_StatusOnly):
    """ERROR_MESSAGE: the reader could not parse or does not support what we sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ROAccessReport(Message):
    """Tag reads; ``misplaced`` keeps raw what LLRP does not put in this message."""

    tags: tuple[TagReportData, ...] = ()
    extra: Extra = ()  # RFSurveyReportData and Custom: placed here, not modelled
    misplaced: Extra = ()

    @property
    def all_misplaced(self) -> Extra:
        """Every misplaced parameter, at message level and inside each TagReportData."""
        return self.misplaced + tuple(p for tag in self.tags for p in tag.misplaced)


@dataclass(frozen=True, slots=True, kw_only=True)
class Keepalive(Message):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepaliveAck(Message):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderEventNotification(Message):
    data: ReaderEventNotificationData


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownMessage(Message):
    """A well-framed message outside our subset: kept, so the client can log and go on."""

    message_type: int
    body: bytes = b""


# Message type numbers, LLRP 1.0.1 section 16.1 table.
MESSAGE_TYPES: dict[type[Message], int] = {
    GetReaderCapabilities: 1,
    SetReaderConfig: 3,
    CloseConnectionResponse: 4,
    GetReaderCapabilitiesResponse: 11,
    SetReaderConfigResponse: 13,
    CloseConnection: 14,
    AddROSpec: 20,
    DeleteROSpec: 21,
    StartROSpec: 22,
    StopROSpec: 23,
    EnableROSpec: 24,
    AddROSpecResponse: 30,
    DeleteROSpecResponse: 31,
    StartROSpecResponse: 32,
    StopROSpecResponse: 33,
    EnableROSpecResponse: 34,
    ROAccessReport: 61,
    Keepalive: 62,
    ReaderEventNotification: 63,
    KeepaliveAck: 72,
    ErrorMessage: 100,
}
CLASSES_BY_TYPE: dict[int, type[Message]] = {v: k for k, v in MESSAGE_TYPES.items()}
