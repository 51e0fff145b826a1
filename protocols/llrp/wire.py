"""Byte-level reading and writing shared by LLRP parameters and messages.

How it works: LLRP (EPCglobal LLRP 1.0.1, section 4) frames every message as a 10-byte header
and a body made of fixed fields followed by *parameters*. A parameter is either

* **TLV** (spec 4.2.3.1): ``rsvd(6) type(10)`` ``length(16)`` ``value``, length counting the
  4-byte header; or
* **TV** (spec 4.2.3.2): ``1 type(7)`` then a value whose size is fixed by the type
  (``TV_VALUE_LENGTHS``), used for the small, frequent fields inside tag reports.

A :class:`Reader` walks a bounded slice of the message; overrunning the slice is
:class:`Malformed` (the message length already told us how many bytes there are).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocols.llrp.errors import Malformed

# TV parameter type -> (name, value length in bytes): every TV type LLRP defines (1.0.1 16.2.7.3
# and its sub-sections, and C1G2SingulationDetails, which belongs in an AISpecEvent; 1.1 adds
# the XPC words 19 and 20). A TV carries no length, so a type missing here cannot be skipped,
# only kept to the end of its enclosing parameter (``raw_rest(tolerant=True)``).
TV_PARAMETERS: dict[int, tuple[str, int]] = {
    1: ("AntennaID", 2),
    2: ("FirstSeenTimestampUTC", 8),
    3: ("FirstSeenTimestampUptime", 8),
    4: ("LastSeenTimestampUTC", 8),
    5: ("LastSeenTimestampUptime", 8),
    6: ("PeakRSSI", 1),  # signed
    7: ("ChannelIndex", 2),
    8: ("TagSeenCount", 2),
    9: ("ROSpecID", 4),
    10: ("InventoryParameterSpecID", 2),
    11: ("C1G2CRC", 2),
    12: ("C1G2PC", 2),
    13: ("EPC-96", 12),
    14: ("SpecIndex", 2),
    15: ("ClientRequestOpSpecResult", 2),
    16: ("AccessSpecID", 4),
    17: ("OpSpecID", 2),
    18: ("C1G2SingulationDetails", 4),  # NumCollisionSlots u16, NumEmptySlots u16
    19: ("C1G2XPCW1", 2),
    20: ("C1G2XPCW2", 2),
}
TV_VALUE_LENGTHS: dict[int, int] = {ptype: size for ptype, (_, size) in TV_PARAMETERS.items()}


def parameter_name(ptype: int, *, tv: bool) -> str:
    """``C1G2SingulationDetails (TV 18)``: how logs name a parameter."""
    if tv:
        return f"{TV_PARAMETERS.get(ptype, ('unknown',))[0]} (TV {ptype})"
    return f"TLV {ptype}"


@dataclass(frozen=True, slots=True)
class RawParameter:
    """A TLV parameter we carry but do not model (kept so nothing is silently lost)."""

    type: int
    body: bytes


@dataclass(frozen=True, slots=True)
class RawTv:
    """A TV parameter we carry but do not model."""

    type: int
    value: bytes


class Reader:
    """Cursor over ``buf[offset:end]``; every overrun is :class:`Malformed`."""

    __slots__ = ("buf", "end", "message_type", "pos")

    def __init__(
        self, buf: bytes | bytearray | memoryview, offset: int, end: int, message_type: int
    ) -> None:
        self.buf = buf
        self.pos = offset
        self.end = end
        self.message_type = message_type

    def malformed(self, reason: str, parameter_type: int | None = None) -> Malformed:
        """Build the error with where we were, for the caller to raise."""
        return Malformed(
            reason, message_type=self.message_type, parameter_type=parameter_type, offset=self.pos
        )

    def remaining(self) -> int:
        """Bytes left in the slice."""
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        """Next ``n`` bytes."""
        if self.pos + n > self.end:
            raise self.malformed(f"field of {n} bytes runs past the end")
        data = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return data

    def u8(self) -> int:
        """Unsigned byte."""
        return self.take(1)[0]

    def s8(self) -> int:
        """Signed byte."""
        return int(struct.unpack(">b", self.take(1))[0])

    def u16(self) -> int:
        """Unsigned 16-bit, big endian like every LLRP field."""
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        """Unsigned 32-bit."""
        return int.from_bytes(self.take(4), "big")

    def u64(self) -> int:
        """Unsigned 64-bit."""
        return int.from_bytes(self.take(8), "big")

    def utf8(self) -> str:
        """UTF-8 string prefixed by its byte count (spec 4.2.2 ``utf8v``)."""
        raw = self.take(self.u16())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise self.malformed("string is not UTF-8") from err

    def next_header(self) -> tuple[bool, int, int]:
        """Peek the next parameter: ``(is_tv, type, total_length)``."""
        if self.pos >= self.end:
            raise self.malformed("parameter expected")
        first = self.buf[self.pos]
        if first & 0x80:
            ptype = first & 0x7F
            if ptype not in TV_VALUE_LENGTHS:
                raise self.malformed("unknown TV parameter, its size is unknowable", ptype)
            return True, ptype, 1 + TV_VALUE_LENGTHS[ptype]
        if self.pos + 4 > self.end:
            raise self.malformed("TLV header runs past the end")
        ptype = int.from_bytes(self.buf[self.pos : self.pos + 2], "big") & 0x3FF
        length = int.from_bytes(self.buf[self.pos + 2 : self.pos + 4], "big")
        if length < 4 or self.pos + length > self.end:
            raise self.malformed(f"TLV length {length} is impossible", ptype)
        return False, ptype, length

    def sub(self, length: int) -> Reader:
        """Reader over the body of the TLV at the cursor (skips its header)."""
        child = Reader(self.buf, self.pos + 4, self.pos + length, self.message_type)
        self.pos += length
        return child

    def peek_type(self) -> int | None:
        """Type of the next parameter, or ``None`` at the end of the slice."""
        if self.pos >= self.end:
            return None
        return self.next_header()[1]

    def raw_next(self, *, tolerant: bool = False) -> RawParameter | RawTv:
        """The next parameter, unmodelled.

        ``tolerant``: a TV type we have no size for takes the rest of the slice as its value
        instead of raising, so what came before it in the enclosing parameter is still used.
        The bytes re-encode exactly.
        """
        if tolerant and self.pos < self.end:
            first = self.buf[self.pos]
            if first & 0x80 and (first & 0x7F) not in TV_VALUE_LENGTHS:
                self.pos += 1
                return RawTv(first & 0x7F, self.take_all())
        is_tv, ptype, length = self.next_header()
        if is_tv:
            self.pos += 1
            return RawTv(ptype, self.take(length - 1))
        return RawParameter(ptype, bytes(self.sub(length).take_all()))

    def raw_rest(self, *, tolerant: bool = False) -> tuple[RawParameter | RawTv, ...]:
        """Every remaining parameter, unmodelled (``tolerant`` as in :meth:`raw_next`)."""
        out: list[RawParameter | RawTv] = []
        while self.remaining():
            out.append(self.raw_next(tolerant=tolerant))
        return tuple(out)

    def next_is_tlv(self, ptype: int) -> bool:
        """Whether a TLV parameter of ``ptype`` is next (never raises on an unknown TV)."""
        return self.pos < self.end and not (self.buf[self.pos] & 0x80) and self.peek_type() == ptype

    def take_all(self) -> bytes:
        """Everything left."""
        return self.take(self.remaining())

    def expect_end(self) -> None:
        """The slice must be used up exactly."""
        if self.pos != self.end:
            raise self.malformed(f"{self.end - self.pos} unexpected trailing bytes")


def tlv(ptype: int, body: bytes) -> bytes:
    """Frame ``body`` as a TLV parameter."""
    return struct.pack(">HH", ptype & 0x3FF, 4 + len(body)) + body


def tv(ptype: int, value: bytes) -> bytes:
    """Frame ``value`` as a TV parameter."""
    return bytes((0x80 | ptype,)) + value


def utf8(text: str) -> bytes:
    """``utf8v``: byte count then bytes."""
    raw = text.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def encode_raw(params: tuple[RawParameter | RawTv, ...]) -> bytes:
    """Re-emit carried parameters unchanged."""
    return b"".join(
        tlv(p.type, p.body) if isinstance(p, RawParameter) else tv(p.type, p.value) for p in params
    )
