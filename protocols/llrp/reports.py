"""TagReportData (16.2.7.3) and ReaderEventNotificationData (16.2.7.6).

How it works: a TagReportData starts with the EPC, either as the 13-byte **EPC-96 TV**
parameter (type 13) or as an **EPCData TLV** (type 241: bit length then the bits, for EPCs that
are not 96 bits long), followed by optional TV fields in the order of the spec table. We model
AntennaID, PeakRSSI, FirstSeenTimestampUTC and TagSeenCount; every other field the spec places
in a TagReportData is kept in ``extra`` and re-emitted at its place in that order.

A parameter the spec does not place in a TagReportData (readers have been seen to put
C1G2SingulationDetails there, which belongs in an AISpecEvent) is kept raw in ``misplaced`` and
re-emitted after everything else: the tag was still read, so the report is still used. A TV type
with no known size cannot be stepped over; it is kept in ``misplaced`` with the rest of the
TagReportData as its value (the TLV length bounds it), and the fields before it are still read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocols.llrp.parameters import (
    CONNECTION_ATTEMPT_EVENT,
    EPC_DATA,
    READER_EVENT_NOTIFICATION_DATA,
    TAG_REPORT_DATA,
    TV_ANTENNA_ID,
    TV_EPC_96,
    TV_FIRST_SEEN_UTC,
    TV_PEAK_RSSI,
    TV_TAG_SEEN_COUNT,
    UPTIME,
    UTC_TIMESTAMP,
    Extra,
)
from protocols.llrp.wire import RawParameter, RawTv, Reader, encode_raw, tlv, tv

# Position of each optional TV field in TagReportData (16.2.7.3): ROSpecID, SpecIndex,
# InventoryParameterSpecID, AntennaID, PeakRSSI, ChannelIndex, FirstSeenUTC, FirstSeenUptime,
# LastSeenUTC, LastSeenUptime, TagSeenCount, AirProtocolTagData (C1G2 PC, CRC, and LLRP 1.1's
# XPC words 19/20), AccessSpecID; then the op spec results (ClientRequestOpSpecResult TV 15 and
# the C1G2 TLVs below) and Custom, which keep their order at _LAST.
_TV_ORDER = {
    9: 0,
    14: 1,
    10: 2,
    1: 3,
    6: 4,
    7: 5,
    2: 6,
    3: 7,
    4: 8,
    5: 9,
    8: 10,
    12: 11,
    11: 11,
    19: 11,
    20: 11,
    16: 12,
    15: 13,
}
_LAST = 13
_MISPLACED = _LAST + 1  # after everything the spec places here
# TLVs a TagReportData may hold after its EPC: the C1G2 op spec results (Read 349,
# Write 350, Kill 351, Lock 352, BlockErase 353, BlockWrite 354; LLRP 1.1 Recommission 360,
# BlockPermalock 361, GetBlockPermalockStatus 362) and Custom (1023).
_TAG_REPORT_TLVS = frozenset({349, 350, 351, 352, 353, 354, 360, 361, 362, 1023})


@dataclass(frozen=True, slots=True, kw_only=True)
class TagReportData:
    """One tag observation as the reader reports it."""

    epc: bytes
    antenna_id: int | None = None
    peak_rssi: int | None = None  # dBm, signed
    first_seen_utc_us: int | None = None  # microseconds since the Unix epoch
    seen_count: int | None = None
    epc_bits: int | None = None  # EPCData bit length when not the EPC-96 form
    extra: Extra = ()  # fields the spec places here that we do not model
    misplaced: Extra = ()  # parameters the spec does not place in a TagReportData, kept raw


def encode_tag_report(t: TagReportData) -> bytes:
    if t.epc_bits is None:
        if len(t.epc) != 12:
            raise ValueError("EPC-96 form needs 12 bytes; set epc_bits for EPCData")
        body = tv(TV_EPC_96, t.epc)
    else:
        body = tlv(EPC_DATA, struct.pack(">H", t.epc_bits) + t.epc)
    fields: list[tuple[int, bytes]] = []
    if t.antenna_id is not None:
        fields.append(
            (_TV_ORDER[TV_ANTENNA_ID], tv(TV_ANTENNA_ID, struct.pack(">H", t.antenna_id)))
        )
    if t.peak_rssi is not None:
        fields.append((_TV_ORDER[TV_PEAK_RSSI], tv(TV_PEAK_RSSI, struct.pack(">b", t.peak_rssi))))
    if t.first_seen_utc_us is not None:
        value = struct.pack(">Q", t.first_seen_utc_us)
        fields.append((_TV_ORDER[TV_FIRST_SEEN_UTC], tv(TV_FIRST_SEEN_UTC, value)))
    if t.seen_count is not None:
        value = struct.pack(">H", t.seen_count)
        fields.append((_TV_ORDER[TV_TAG_SEEN_COUNT], tv(TV_TAG_SEEN_COUNT, value)))
    for p in t.extra:
        rank = _TV_ORDER.get(p.type, _LAST) if isinstance(p, RawTv) else _LAST
        fields.append((rank, encode_raw((p,))))
    fields.extend((_MISPLACED, encode_raw((p,))) for p in t.misplaced)
    fields.sort(key=lambda f: f[0])  # stable: extras keep their relative order
    return tlv(TAG_REPORT_DATA, body + b"".join(f[1] for f in fields))


def decode_tag_report(r: Reader) -> TagReportData:
    is_tv, ptype, length = r.next_header()
    epc_bits: int | None = None
    if is_tv and ptype == TV_EPC_96:
        r.pos += 1
        epc = r.take(12)
    elif not is_tv and ptype == EPC_DATA:
        s = r.sub(length)
        epc_bits = s.u16()
        epc = s.take_all()
        if len(epc) != (epc_bits + 7) // 8:
            raise s.malformed(f"EPCData of {epc_bits} bits holds {len(epc)} bytes", EPC_DATA)
    else:
        raise r.malformed("TagReportData must start with an EPC", ptype)
    antenna = rssi = first_seen = seen = None
    extra: list[RawParameter | RawTv] = []
    misplaced: list[RawParameter | RawTv] = []
    for p in r.raw_rest(tolerant=True):
        if isinstance(p, RawTv) and p.type == TV_ANTENNA_ID:
            antenna = int.from_bytes(p.value, "big")
        elif isinstance(p, RawTv) and p.type == TV_PEAK_RSSI:
            rssi = int(struct.unpack(">b", p.value)[0])
        elif isinstance(p, RawTv) and p.type == TV_FIRST_SEEN_UTC:
            first_seen = int.from_bytes(p.value, "big")
        elif isinstance(p, RawTv) and p.type == TV_TAG_SEEN_COUNT:
            seen = int.from_bytes(p.value, "big")
        elif _placed_in_tag_report(p):
            extra.append(p)
        else:
            misplaced.append(p)
    return TagReportData(
        epc=epc,
        antenna_id=antenna,
        peak_rssi=rssi,
        first_seen_utc_us=first_seen,
        seen_count=seen,
        epc_bits=epc_bits,
        extra=tuple(extra),
        misplaced=tuple(misplaced),
    )


def _placed_in_tag_report(p: RawParameter | RawTv) -> bool:
    """Whether LLRP puts this parameter in a TagReportData (after the EPC, which comes first)."""
    return p.type in (_TV_ORDER if isinstance(p, RawTv) else _TAG_REPORT_TLVS)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderEventNotificationData:
    """ReaderEventNotificationData: a timestamp and the events; we model ConnectionAttempt."""

    timestamp_us: int
    uptime: bool = False  # True when the timestamp is Uptime (129), not UTCTimestamp (128)
    connection_attempt: int | None = None  # 0 Success … 4 another connection attempted
    extra: Extra = ()


def encode_event_data(e: ReaderEventNotificationData) -> bytes:
    body = tlv(UPTIME if e.uptime else UTC_TIMESTAMP, struct.pack(">Q", e.timestamp_us))
    if e.connection_attempt is not None:
        body += tlv(CONNECTION_ATTEMPT_EVENT, struct.pack(">H", e.connection_attempt))
    return tlv(READER_EVENT_NOTIFICATION_DATA, body + encode_raw(e.extra))


def decode_event_data(r: Reader) -> ReaderEventNotificationData:
    is_tv, ptype, length = r.next_header()
    if is_tv or ptype not in (UTC_TIMESTAMP, UPTIME):
        raise r.malformed("ReaderEventNotificationData must start with a timestamp", ptype)
    ts = r.sub(length)
    timestamp = ts.u64()
    ts.expect_end()
    attempt = None
    extra: list[RawParameter | RawTv] = []
    for p in r.raw_rest():
        if isinstance(p, RawParameter) and p.type == CONNECTION_ATTEMPT_EVENT and len(p.body) == 2:
            attempt = int.from_bytes(p.body, "big")
        else:
            extra.append(p)
    return ReaderEventNotificationData(
        timestamp_us=timestamp,
        uptime=ptype == UPTIME,
        connection_attempt=attempt,
        extra=tuple(extra),
    )
