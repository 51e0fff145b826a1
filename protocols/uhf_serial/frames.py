"""Sans-I/O codec for the Impinj-R2000 module "0xA0" serial protocol (UART, 115200 8N1).

This is the protocol spoken by the many R2000-based desktop and fixed readers (the "UHF RFID
Reader Serial Interface Protocol" V3.x of the module vendors). Every frame, both ways::

    +------+-----+---------+-----+------------+-------+
    | 0xA0 | Len | Address | Cmd | Data (N)   | Check |
    +------+-----+---------+-----+------------+-------+
    Len   = N + 3 (address, cmd, data, check: the bytes after Len)
    Check = two's complement of the 8-bit sum of every byte before it, Head included

Commands we speak (host -> reader request / reader -> host responses):

====  ========================  ============  ==============================================
Cmd   name                      request data  response data
====  ========================  ============  ==============================================
0x89  cmd_real_time_inventory   Repeat(1)     per tag: FreqAnt(1) PC(2) EPC(n) RSSI(1);
                                              at the end: AntID(1) ReadRate(2) TotalRead(4)
                                              (Len 0x0A); on error: Code(1) (Len 4)
0x74  cmd_set_work_antenna      AntID(1)      Code(1), 0x10 = success
0x72  cmd_get_firmware_version  -             Major(1) Minor(1)
====  ========================  ============  ==============================================

``FreqAnt``: high 6 bits are the frequency channel, low 2 bits the antenna (0-3). ``RSSI``: the
low 7 bits are a table index where dBm = value - 129 (98 -> -31 dBm … 31 -> -98 dBm); the high
bit flags antennas 5-8 on 8-port readers.

How it works: :func:`decode_response` / :func:`decode_request` look at the start of a buffer.
Fewer bytes than a whole frame raises :class:`Incomplete`. Bytes that are not a frame raise
:class:`Malformed` whose ``discard`` says how many leading bytes to drop: up to the next 0xA0
for garbage, one byte for a bad checksum (the 0xA0 may have been noise and a real frame can
start inside). The caller drops ``discard`` bytes and calls again: that is the resync.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.uhf_serial.errors import Incomplete, Malformed

HEAD = 0xA0
CMD_REAL_TIME_INVENTORY = 0x89
CMD_SET_WORK_ANTENNA = 0x74
CMD_GET_FIRMWARE_VERSION = 0x72
SUCCESS = 0x10
RSSI_OFFSET = 129
BROADCAST = 0xFF


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """A host -> reader request."""

    address: int = BROADCAST
    cmd: int
    data: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class TagRead:
    """One tag seen during real-time inventory."""

    address: int
    antenna: int  # 1-based, as printed on the reader
    channel: int
    pc: int
    epc: bytes
    rssi_dbm: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryDone:
    """End of one real-time inventory round."""

    address: int
    antenna: int
    read_rate: int
    total_reads: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """Any other response: the raw data of a command (error codes, versions, set results)."""

    address: int
    cmd: int
    data: bytes

    @property
    def ok(self) -> bool:
        """A one-byte reply of 0x10 is the module's "command succeeded"."""
        return self.data == bytes((SUCCESS,))


Response = TagRead | InventoryDone | Reply


def checksum(frame_without_check: bytes | bytearray | memoryview) -> int:
    """Two's complement of the byte sum (the vendor's ``~sum + 1``)."""
    return (-sum(frame_without_check)) & 0xFF


def frame(*, address: int, cmd: int, data: bytes = b"") -> bytes:
    """Build a complete frame."""
    body = bytes((HEAD, len(data) + 3, address, cmd)) + data
    return body + bytes((checksum(body),))


def encode_command(c: Command) -> bytes:
    """Host -> reader bytes."""
    return frame(address=c.address, cmd=c.cmd, data=c.data)


def encode_response(r: Response) -> bytes:
    """Reader -> host bytes (what simulators write)."""
    if isinstance(r, TagRead):
        index = r.antenna - 1
        freq_ant = (r.channel << 2) | (index & 0b11)
        rssi = (r.rssi_dbm + RSSI_OFFSET) | (0x80 if index >= 4 else 0)
        data = bytes((freq_ant,)) + r.pc.to_bytes(2, "big") + r.epc + bytes((rssi,))
        return frame(address=r.address, cmd=CMD_REAL_TIME_INVENTORY, data=data)
    if isinstance(r, InventoryDone):
        data = (
            bytes((r.antenna - 1,))
            + r.read_rate.to_bytes(2, "big")
            + r.total_reads.to_bytes(4, "big")
        )
        return frame(address=r.address, cmd=CMD_REAL_TIME_INVENTORY, data=data)
    return frame(address=r.address, cmd=r.cmd, data=r.data)


def _split(buf: bytes | bytearray | memoryview) -> tuple[int, int, bytes, int]:
    """Validate framing; return (address, cmd, data, frame length)."""
    if not buf:
        raise Incomplete(needed=1, have=0)
    if buf[0] != HEAD:
        nxt = bytes(buf).find(bytes((HEAD,)))
        raise Malformed("garbage before frame head", discard=len(buf) if nxt < 0 else nxt)
    if len(buf) < 2:
        raise Incomplete(needed=2, have=len(buf))
    length = buf[1]
    if length < 3:
        raise Malformed(f"impossible length byte {length}", discard=1)
    total = length + 2
    if len(buf) < total:
        raise Incomplete(needed=total, have=len(buf))
    expected = checksum(buf[: total - 1])
    if buf[total - 1] != expected:
        raise Malformed(
            f"checksum {buf[total - 1]:#04x} != {expected:#04x}",
            discard=1,
            cmd=buf[3],
            frame=bytes(buf[:total]),
        )
    return buf[2], buf[3], bytes(buf[4 : total - 1]), total


def decode_request(buf: bytes | bytearray | memoryview) -> tuple[Command, int]:
    """Decode a host -> reader frame (the simulator's side)."""
    address, cmd, data, total = _split(buf)
    return Command(address=address, cmd=cmd, data=data), total


def decode_response(buf: bytes | bytearray | memoryview) -> tuple[Response, int]:
    """Decode a reader -> host frame (the client's side)."""
    address, cmd, data, total = _split(buf)
    if cmd == CMD_REAL_TIME_INVENTORY and len(data) == 7:
        done = InventoryDone(
            address=address,
            antenna=data[0] + 1,
            read_rate=int.from_bytes(data[1:3], "big"),
            total_reads=int.from_bytes(data[3:7], "big"),
        )
        return done, total
    if cmd == CMD_REAL_TIME_INVENTORY and len(data) >= 4:
        # FreqAnt(1) PC(2) EPC(n) RSSI(1); the PC word's top 5 bits give the EPC length in words
        pc = int.from_bytes(data[1:3], "big")
        epc = data[3:-1]
        if len(epc) != (pc >> 11) * 2:
            raise Malformed(
                f"PC says {(pc >> 11) * 2} EPC bytes, frame has {len(epc)}",
                discard=total,
                cmd=cmd,
                frame=bytes(buf[:total]),
            )
        rssi = data[-1]
        antenna = (data[0] & 0b11) + (4 if rssi & 0x80 else 0) + 1
        tag = TagRead(
            address=address,
            antenna=antenna,
            channel=data[0] >> 2,
            pc=pc,
            epc=epc,
            rssi_dbm=(rssi & 0x7F) - RSSI_OFFSET,
        )
        return tag, total
    return Reply(address=address, cmd=cmd, data=data), total
