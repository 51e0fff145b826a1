"""LLRP message framing: ``decode(buf) -> (message, consumed)`` and ``encode(message)``.

How it works: every LLRP message (spec 4.2.1) starts with a 10-byte header::

    rsvd(3)=0 ver(3)=1 type(10) | length(32, whole message) | message id(32)

``decode`` first waits for the header (:class:`Incomplete` below 10 bytes), then for
``length`` bytes, then decodes the body of the type with the table in ``_BODY_DECODERS``. A bad
header means the TCP stream is lost (``Malformed.discard is None``); a bad body inside a sound
frame can be skipped (``discard == length``). The codec never reads a socket.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from protocols.llrp import messages as m
from protocols.llrp.errors import Incomplete, Malformed
from protocols.llrp.parameters import (
    CUSTOM,
    GENERAL_DEVICE_CAPABILITIES,
    KEEPALIVE_SPEC,
    LLRP_STATUS,
    READER_EVENT_NOTIFICATION_DATA,
    READER_EVENT_NOTIFICATION_SPEC,
    RF_SURVEY_REPORT_DATA,
    RO_REPORT_SPEC,
    ROSPEC,
    TAG_REPORT_DATA,
    LlrpStatus,
    decode_event_spec,
    decode_general_capabilities,
    decode_keepalive_spec,
    decode_ro_report_spec,
    decode_status,
    encode_event_spec,
    encode_general_capabilities,
    encode_status,
)
from protocols.llrp.reports import (
    TagReportData,
    decode_event_data,
    decode_tag_report,
    encode_event_data,
    encode_tag_report,
)
from protocols.llrp.rospec import decode_rospec, encode_rospec
from protocols.llrp.wire import RawParameter, RawTv, Reader, encode_raw

HEADER_LENGTH = 10
VERSION = 1
MAX_MESSAGE_LENGTH = 1 << 20  # a sane bound: a report of ~30,000 tags; beyond it the stream is lost

__all__ = ["HEADER_LENGTH", "decode", "encode"]

_STATUS_ONLY = (
    m.SetReaderConfigResponse,
    m.AddROSpecResponse,
    m.DeleteROSpecResponse,
    m.StartROSpecResponse,
    m.StopROSpecResponse,
    m.EnableROSpecResponse,
    m.CloseConnectionResponse,
    m.ErrorMessage,
)
_RO_ACCESS_REPORT_EXTRAS = frozenset({RF_SURVEY_REPORT_DATA, CUSTOM})
_ROSPEC_ID = (m.DeleteROSpec, m.StartROSpec, m.StopROSpec, m.EnableROSpec)
_EMPTY = (m.CloseConnection, m.Keepalive, m.KeepaliveAck)


def encode(message: m.Message) -> bytes:
    """The wire bytes of ``message``, header included."""
    if isinstance(message, m.UnknownMessage):
        mtype, body = message.message_type, message.body
    else:
        mtype, body = m.MESSAGE_TYPES[type(message)], _encode_body(message)
    header = struct.pack(
        ">HII", (VERSION << 10) | mtype, HEADER_LENGTH + len(body), message.message_id
    )
    return header + body


def _encode_body(msg: m.Message) -> bytes:
    if isinstance(msg, _STATUS_ONLY):
        return encode_status(msg.status)
    if isinstance(msg, _ROSPEC_ID):
        return struct.pack(">I", msg.rospec_id)
    if isinstance(msg, _EMPTY):
        return b""
    if isinstance(msg, m.GetReaderCapabilities):
        return bytes((msg.requested_data,))
    if isinstance(msg, m.GetReaderCapabilitiesResponse):
        general = b"" if msg.general is None else encode_general_capabilities(msg.general)
        return encode_status(msg.status) + general + encode_raw(msg.extra)
    if isinstance(msg, m.SetReaderConfig):
        body = bytes((0x80 if msg.reset_to_factory_default else 0,))
        if msg.events is not None:
            body += encode_event_spec(msg.events)
        if msg.report is not None:
            body += msg.report.encode()
        if msg.keepalive is not None:
            body += msg.keepalive.encode()
        return body + encode_raw(msg.extra)
    if isinstance(msg, m.AddROSpec):
        return encode_rospec(msg.rospec)
    if isinstance(msg, m.ROAccessReport):
        tags = b"".join(encode_tag_report(t) for t in msg.tags)
        return tags + encode_raw(msg.extra) + encode_raw(msg.misplaced)
    if isinstance(msg, m.ReaderEventNotification):
        return encode_event_data(msg.data)
    raise TypeError(f"no encoder for {type(msg).__name__}")


def decode(buf: bytes | bytearray | memoryview) -> tuple[m.Message, int]:
    """Decode the message at the start of ``buf``; return it and the bytes it used."""
    have = len(buf)
    if have < HEADER_LENGTH:
        raise Incomplete(needed=HEADER_LENGTH, have=have)
    first, length, message_id = struct.unpack_from(">HII", buf)
    version, mtype = (first >> 10) & 0x7, first & 0x3FF
    if first >> 13 or version != VERSION:
        raise Malformed(f"header version {version} (word {first:#06x})", message_type=mtype)
    if not HEADER_LENGTH <= length <= MAX_MESSAGE_LENGTH:
        raise Malformed(f"impossible message length {length}", message_type=mtype)
    if have < length:
        raise Incomplete(needed=length, have=have)
    cls = m.CLASSES_BY_TYPE.get(mtype)
    if cls is None:
        body = bytes(buf[HEADER_LENGTH:length])
        return m.UnknownMessage(message_id=message_id, message_type=mtype, body=body), length
    reader = Reader(buf, HEADER_LENGTH, length, mtype)
    try:
        message = _BODY_DECODERS[cls](reader, message_id)
        reader.expect_end()
    except Malformed as err:
        err.discard = length
        raise
    return message, length


def _expect(r: Reader, ptype: int) -> Reader:
    is_tv, found, length = r.next_header()
    if is_tv or found != ptype:
        raise r.malformed(f"expected parameter {ptype}, found {found}", found)
    return r.sub(length)


def _optional(r: Reader, ptype: int) -> Reader | None:
    return _expect(r, ptype) if r.remaining() and r.peek_type() == ptype else None


def _status(r: Reader) -> LlrpStatus:
    return decode_status(_expect(r, LLRP_STATUS))


def _status_only(cls: type[m._StatusOnly]) -> Callable[[Reader, int], m.Message]:
    return lambda r, mid: cls(message_id=mid, status=_status(r))


def _rospec_id(cls: type[m._ROSpecId]) -> Callable[[Reader, int], m.Message]:
    return lambda r, mid: cls(message_id=mid, rospec_id=r.u32())


def _empty(cls: type[m.Message]) -> Callable[[Reader, int], m.Message]:
    return lambda _r, mid: cls(message_id=mid)


def _capabilities_response(r: Reader, mid: int) -> m.Message:
    status = _status(r)
    general = _optional(r, GENERAL_DEVICE_CAPABILITIES)
    return m.GetReaderCapabilitiesResponse(
        message_id=mid,
        status=status,
        general=None if general is None else decode_general_capabilities(general),
        extra=r.raw_rest(),
    )


def _set_reader_config(r: Reader, mid: int) -> m.Message:
    reset = bool(r.u8() & 0x80)
    events = _optional(r, READER_EVENT_NOTIFICATION_SPEC)
    report = _optional(r, RO_REPORT_SPEC)
    keepalive = _optional(r, KEEPALIVE_SPEC)
    return m.SetReaderConfig(
        message_id=mid,
        reset_to_factory_default=reset,
        events=None if events is None else decode_event_spec(events),
        report=None if report is None else decode_ro_report_spec(report),
        keepalive=None if keepalive is None else decode_keepalive_spec(keepalive),
        extra=r.raw_rest(),
    )


def _ro_access_report(r: Reader, mid: int) -> m.Message:
    """TagReportData, RFSurveyReportData and Custom in any order; the rest is misplaced.

    A misplaced parameter between two TagReportData must not hide the reads after it.
    """
    tags: list[TagReportData] = []
    extra: list[RawParameter | RawTv] = []
    misplaced: list[RawParameter | RawTv] = []
    while r.remaining():
        if r.next_is_tlv(TAG_REPORT_DATA):
            tags.append(decode_tag_report(_expect(r, TAG_REPORT_DATA)))
            continue
        p = r.raw_next(tolerant=True)
        placed = isinstance(p, RawParameter) and p.type in _RO_ACCESS_REPORT_EXTRAS
        (extra if placed else misplaced).append(p)
    return m.ROAccessReport(
        message_id=mid, tags=tuple(tags), extra=tuple(extra), misplaced=tuple(misplaced)
    )


def _reader_event(r: Reader, mid: int) -> m.Message:
    data = decode_event_data(_expect(r, READER_EVENT_NOTIFICATION_DATA))
    return m.ReaderEventNotification(message_id=mid, data=data)


_BODY_DECODERS: dict[type[m.Message], Callable[[Reader, int], m.Message]] = {
    m.GetReaderCapabilities: lambda r, mid: m.GetReaderCapabilities(
        message_id=mid, requested_data=r.u8()
    ),
    m.GetReaderCapabilitiesResponse: _capabilities_response,
    m.SetReaderConfig: _set_reader_config,
    m.AddROSpec: lambda r, mid: m.AddROSpec(
        message_id=mid, rospec=decode_rospec(_expect(r, ROSPEC))
    ),
    m.ROAccessReport: _ro_access_report,
    m.ReaderEventNotification: _reader_event,
    **{cls: _status_only(cls) for cls in _STATUS_ONLY},
    **{cls: _rospec_id(cls) for cls in _ROSPEC_ID},
    **{cls: _empty(cls) for cls in _EMPTY},
}
