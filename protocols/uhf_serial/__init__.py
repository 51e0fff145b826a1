"""Sans-I/O codec for the R2000 "0xA0" serial UHF reader protocol (see :mod:`.frames`)."""

from protocols.uhf_serial.errors import Incomplete, Malformed, UhfSerialError
from protocols.uhf_serial.frames import (
    BROADCAST,
    CMD_GET_FIRMWARE_VERSION,
    CMD_REAL_TIME_INVENTORY,
    CMD_SET_WORK_ANTENNA,
    SUCCESS,
    Command,
    InventoryDone,
    Reply,
    Response,
    TagRead,
    checksum,
    decode_request,
    decode_response,
    encode_command,
    encode_response,
    frame,
)

__all__ = [
    "BROADCAST",
    "CMD_GET_FIRMWARE_VERSION",
    "CMD_REAL_TIME_INVENTORY",
    "CMD_SET_WORK_ANTENNA",
    "SUCCESS",
    "Command",
    "Incomplete",
    "InventoryDone",
    "Malformed",
    "Reply",
    "Response",
    "TagRead",
    "UhfSerialError",
    "checksum",
    "decode_request",
    "decode_response",
    "encode_command",
    "encode_response",
    "frame",
]
