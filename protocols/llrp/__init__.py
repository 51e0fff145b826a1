"""Sans-I/O codec for the subset of LLRP 1.0.1 a store's RFID count uses.

``decode(buf) -> (message, consumed)`` raises :class:`Incomplete` or :class:`Malformed`;
``encode(message) -> bytes``. See :mod:`protocols.llrp.codec` for how framing works.
"""

from protocols.llrp.codec import HEADER_LENGTH, decode, encode
from protocols.llrp.errors import Incomplete, LlrpError, Malformed
from protocols.llrp.messages import (
    AddROSpec,
    AddROSpecResponse,
    CloseConnection,
    CloseConnectionResponse,
    DeleteROSpec,
    DeleteROSpecResponse,
    EnableROSpec,
    EnableROSpecResponse,
    ErrorMessage,
    GetReaderCapabilities,
    GetReaderCapabilitiesResponse,
    Keepalive,
    KeepaliveAck,
    Message,
    ReaderEventNotification,
    ROAccessReport,
    SetReaderConfig,
    SetReaderConfigResponse,
    StartROSpec,
    StartROSpecResponse,
    StopROSpec,
    StopROSpecResponse,
    UnknownMessage,
)
from protocols.llrp.parameters import (
    EventNotificationState,
    GeneralDeviceCapabilities,
    KeepaliveSpec,
    LlrpStatus,
    ReportContent,
    ROReportSpec,
)
from protocols.llrp.reports import ReaderEventNotificationData, TagReportData
from protocols.llrp.rospec import AISpec, InventoryParameterSpec, ROSpec
from protocols.llrp.wire import RawParameter, RawTv, parameter_name

__all__ = [
    "HEADER_LENGTH",
    "AISpec",
    "AddROSpec",
    "AddROSpecResponse",
    "CloseConnection",
    "CloseConnectionResponse",
    "DeleteROSpec",
    "DeleteROSpecResponse",
    "EnableROSpec",
    "EnableROSpecResponse",
    "ErrorMessage",
    "EventNotificationState",
    "GeneralDeviceCapabilities",
    "GetReaderCapabilities",
    "GetReaderCapabilitiesResponse",
    "Incomplete",
    "InventoryParameterSpec",
    "Keepalive",
    "KeepaliveAck",
    "KeepaliveSpec",
    "LlrpError",
    "LlrpStatus",
    "Malformed",
    "Message",
    "ROAccessReport",
    "ROReportSpec",
    "ROSpec",
    "RawParameter",
    "RawTv",
    "ReaderEventNotification",
    "ReaderEventNotificationData",
    "ReportContent",
    "SetReaderConfig",
    "SetReaderConfigResponse",
    "StartROSpec",
    "StartROSpecResponse",
    "StopROSpec",
    "StopROSpecResponse",
    "TagReportData",
    "UnknownMessage",
    "decode",
    "encode",
    "parameter_name",
]
