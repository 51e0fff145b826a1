"""The LLRP parameters of our subset, as frozen dataclasses with their encoders and decoders.

How it works: each modelled parameter has an ``encode_x(p) -> bytes`` and a
``decode_x(reader) -> p`` that reads the parameter's *body* (the TLV header is already
consumed by :meth:`Reader.sub`). Sub-parameters we do not model are kept in ``extra`` as
:class:`RawParameter` / :class:`RawTv`, so decoding a real reader's chatter never fails on a
vendor extension. Numbers in comments are LLRP 1.0.1 section numbers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntFlag

from protocols.llrp.wire import RawParameter, RawTv, Reader, encode_raw, tlv, utf8

Extra = tuple[RawParameter | RawTv, ...]

# TLV parameter types (16.3)
UTC_TIMESTAMP = 128
UPTIME = 129
GENERAL_DEVICE_CAPABILITIES = 137
ROSPEC = 177
RO_BOUNDARY_SPEC = 178
ROSPEC_START_TRIGGER = 179
ROSPEC_STOP_TRIGGER = 182
AI_SPEC = 183
AI_SPEC_STOP_TRIGGER = 184
INVENTORY_PARAMETER_SPEC = 186
KEEPALIVE_SPEC = 220
RO_REPORT_SPEC = 237
TAG_REPORT_CONTENT_SELECTOR = 238
TAG_REPORT_DATA = 240
EPC_DATA = 241
RF_SURVEY_REPORT_DATA = 242
READER_EVENT_NOTIFICATION_SPEC = 244
EVENT_NOTIFICATION_STATE = 245
READER_EVENT_NOTIFICATION_DATA = 246
CONNECTION_ATTEMPT_EVENT = 256
LLRP_STATUS = 287
CUSTOM = 1023

# TV parameter types (16.2.7.3)
TV_ANTENNA_ID = 1
TV_FIRST_SEEN_UTC = 2
TV_PEAK_RSSI = 6
TV_TAG_SEEN_COUNT = 8
TV_EPC_96 = 13

STATUS_SUCCESS = 0  # M_Success (15.2.1.11.1)


@dataclass(frozen=True, slots=True, kw_only=True)
class LlrpStatus:
    """LLRPStatus (16.2.8.1): the outcome carried by every *_RESPONSE."""

    code: int = STATUS_SUCCESS
    description: str = ""
    extra: Extra = ()

    @property
    def ok(self) -> bool:
        """True for M_Success."""
        return self.code == STATUS_SUCCESS


def encode_status(p: LlrpStatus) -> bytes:
    return tlv(LLRP_STATUS, struct.pack(">H", p.code) + utf8(p.description) + encode_raw(p.extra))


def decode_status(r: Reader) -> LlrpStatus:
    return LlrpStatus(code=r.u16(), description=r.utf8(), extra=r.raw_rest())


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneralDeviceCapabilities:
    """GeneralDeviceCapabilities (16.2.3.2), the fields a count cares about."""

    max_antennas: int
    can_set_antenna_properties: bool = False
    has_utc_clock: bool = True
    manufacturer: int = 0
    model: int = 0
    firmware: str = ""
    extra: Extra = ()


def encode_general_capabilities(p: GeneralDeviceCapabilities) -> bytes:
    flags = (0x8000 if p.can_set_antenna_properties else 0) | (0x4000 if p.has_utc_clock else 0)
    body = struct.pack(">HHII", p.max_antennas, flags, p.manufacturer, p.model)
    return tlv(GENERAL_DEVICE_CAPABILITIES, body + utf8(p.firmware) + encode_raw(p.extra))


def decode_general_capabilities(r: Reader) -> GeneralDeviceCapabilities:
    max_antennas, flags = r.u16(), r.u16()
    return GeneralDeviceCapabilities(
        max_antennas=max_antennas,
        can_set_antenna_properties=bool(flags & 0x8000),
        has_utc_clock=bool(flags & 0x4000),
        manufacturer=r.u32(),
        model=r.u32(),
        firmware=r.utf8(),
        extra=r.raw_rest(),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepaliveSpec:
    """KeepaliveSpec (16.2.6.4): ask the reader for a KEEPALIVE every ``period_ms``."""

    period_ms: int = 0  # 0 means Null trigger: no keepalives

    def encode(self) -> bytes:
        trigger = 1 if self.period_ms else 0
        return tlv(KEEPALIVE_SPEC, struct.pack(">BI", trigger, self.period_ms))


def decode_keepalive_spec(r: Reader) -> KeepaliveSpec:
    trigger, period = r.u8(), r.u32()
    return KeepaliveSpec(period_ms=period if trigger else 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventNotificationState:
    """EventNotificationState (16.2.6.3.1): switch one reader event type on or off."""

    event_type: int
    enabled: bool


def encode_event_spec(states: tuple[EventNotificationState, ...]) -> bytes:
    body = b"".join(
        tlv(EVENT_NOTIFICATION_STATE, struct.pack(">HB", s.event_type, 0x80 if s.enabled else 0))
        for s in states
    )
    return tlv(READER_EVENT_NOTIFICATION_SPEC, body)


def decode_event_spec(r: Reader) -> tuple[EventNotificationState, ...]:
    states = []
    while r.remaining():
        is_tv, ptype, length = r.next_header()
        if is_tv or ptype != EVENT_NOTIFICATION_STATE:
            raise r.malformed("ReaderEventNotificationSpec holds only states", ptype)
        s = r.sub(length)
        states.append(EventNotificationState(event_type=s.u16(), enabled=bool(s.u8() & 0x80)))
        s.expect_end()
    return tuple(states)


class ReportContent(IntFlag):
    """TagReportContentSelector (16.2.7.1) flags: which fields each TagReportData carries."""

    ROSPEC_ID = 0x8000
    SPEC_INDEX = 0x4000
    INVENTORY_PARAMETER_SPEC_ID = 0x2000
    ANTENNA_ID = 0x1000
    CHANNEL_INDEX = 0x0800
    PEAK_RSSI = 0x0400
    FIRST_SEEN_TIMESTAMP = 0x0200
    LAST_SEEN_TIMESTAMP = 0x0100
    TAG_SEEN_COUNT = 0x0080
    ACCESS_SPEC_ID = 0x0040


@dataclass(frozen=True, slots=True, kw_only=True)
class ROReportSpec:
    """ROReportSpec (16.2.7.1): when to report (``trigger``, ``n`` tags) and with what."""

    trigger: int = 1  # upon N tags or end of AISpec
    n: int = 0
    content: ReportContent = field(default_factory=lambda: ReportContent(0))
    extra: Extra = ()

    def encode(self) -> bytes:
        selector = tlv(
            TAG_REPORT_CONTENT_SELECTOR,
            struct.pack(">H", int(self.content)) + encode_raw(self.extra),
        )
        return tlv(RO_REPORT_SPEC, struct.pack(">BH", self.trigger, self.n) + selector)


def decode_ro_report_spec(r: Reader) -> ROReportSpec:
    trigger, n = r.u8(), r.u16()
    is_tv, ptype, length = r.next_header()
    if is_tv or ptype != TAG_REPORT_CONTENT_SELECTOR:
        raise r.malformed("ROReportSpec needs a TagReportContentSelector", ptype)
    s = r.sub(length)
    content = ReportContent(s.u16() & 0xFFC0)
    spec = ROReportSpec(trigger=trigger, n=n, content=content, extra=s.raw_rest())
    r.expect_end()
    return spec
