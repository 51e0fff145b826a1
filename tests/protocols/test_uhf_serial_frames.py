"""R2000 "0xA0" serial frames: golden vectors, truncation, resync after garbage and bad sums."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocols.uhf_serial as uhf

EPC = bytes.fromhex("3074257BF7194E4000001A85")

GOLDEN_RESPONSES = [
    # A0 len=0x13 (16 data + 3) addr=01 cmd=89 | FreqAnt 0x1d: channel 7, antenna index 1 |
    # PC 3000 (6 words) | EPC | RSSI 0x45 = 69 -> -60 dBm | check = -(sum) & 0xff
    pytest.param(
        "A0 13 01 89 1D 3000 3074257BF7194E4000001A85 45 B0",
        uhf.TagRead(address=1, antenna=2, channel=7, pc=0x3000, epc=EPC, rssi_dbm=-60),
        id="real-time-tag",
    ),
    # end of round: antenna index 0, read rate 0x0064 = 100/s, total reads 0x000003E8 = 1000
    pytest.param(
        "A0 0A 01 89 00 0064 000003E8 7D",
        uhf.InventoryDone(address=1, antenna=1, read_rate=100, total_reads=1000),
        id="inventory-done",
    ),
    # error: code 0x22 (no tag / antenna missing)
    pytest.param(
        "A0 04 01 89 22 B0",
        uhf.Reply(address=1, cmd=0x89, data=b"\x22"),
        id="inventory-error",
    ),
    pytest.param(
        "A0 04 01 74 10 D7",
        uhf.Reply(address=1, cmd=0x74, data=b"\x10"),
        id="set-antenna-success",
    ),
]


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize(("wire", "response"), GOLDEN_RESPONSES)
def test_decode_golden(wire: str, response: uhf.Response) -> None:
    assert uhf.decode_response(h(wire)) == (response, len(h(wire)))


@pytest.mark.parametrize(("wire", "response"), GOLDEN_RESPONSES)
def test_encode_golden(wire: str, response: uhf.Response) -> None:
    assert uhf.encode_response(response) == h(wire)


@pytest.mark.parametrize(("wire", "response"), GOLDEN_RESPONSES)
def test_every_prefix_is_incomplete(wire: str, response: uhf.Response) -> None:
    data = h(wire)
    buf = bytearray()
    for byte in data[:-1]:
        buf.append(byte)
        with pytest.raises(uhf.Incomplete):
            uhf.decode_response(buf)
    buf.append(data[-1])
    assert uhf.decode_response(buf) == (response, len(data))


@pytest.mark.parametrize(
    ("wire", "command"),
    [
        pytest.param("A0 04 FF 89 FF D5", uhf.Command(cmd=0x89, data=b"\xff"), id="inventory"),
        pytest.param("A0 04 01 74 00 E7", uhf.Command(address=1, cmd=0x74, data=b"\x00"), id="ant"),
        pytest.param("A0 03 01 72 EA", uhf.Command(address=1, cmd=0x72), id="firmware"),
    ],
)
def test_command_golden(wire: str, command: uhf.Command) -> None:
    assert uhf.encode_command(command) == h(wire)
    assert uhf.decode_request(h(wire)) == (command, len(h(wire)))


def decode_all(stream: bytes) -> tuple[list[uhf.Response], list[uhf.Malformed]]:
    """What a reader loop does: decode, drop ``discard`` bytes on Malformed, stop on Incomplete."""
    buf = bytearray(stream)
    out: list[uhf.Response] = []
    errors: list[uhf.Malformed] = []
    while True:
        try:
            frame, used = uhf.decode_response(buf)
        except uhf.Incomplete:
            return out, errors
        except uhf.Malformed as err:
            errors.append(err)
            del buf[: err.discard]
            continue
        out.append(frame)
        del buf[:used]


def test_resync_after_garbage_and_bad_checksum() -> None:
    tag = uhf.TagRead(address=1, antenna=1, channel=0, pc=0x3000, epc=EPC, rssi_dbm=-50)
    good = uhf.encode_response(tag)
    corrupt = bytearray(good)
    corrupt[10] ^= 0xFF
    frames, errors = decode_all(b"\x00\x13garbage" + bytes(corrupt) + good + good[:5])
    assert frames == [tag]
    assert errors[0].reason == "garbage before frame head"
    assert any(e.reason.startswith("checksum") and e.cmd == 0x89 for e in errors)


def test_pc_length_disagreeing_with_epc_is_malformed() -> None:
    wire = uhf.frame(address=1, cmd=0x89, data=b"\x00\x30\x00" + EPC[:10] + b"\x40")
    with pytest.raises(uhf.Malformed) as info:
        uhf.decode_response(wire)
    assert info.value.discard == len(wire)


tags = st.builds(
    uhf.TagRead,
    address=st.integers(0, 255),
    antenna=st.integers(1, 8),
    channel=st.integers(0, 63),
    pc=st.integers(0, 31).map(lambda words: (words << 11) | 0x0000),
    epc=st.just(b""),
    rssi_dbm=st.integers(-129, -2),
).map(
    lambda t: uhf.TagRead(
        address=t.address,
        antenna=t.antenna,
        channel=t.channel,
        pc=t.pc,
        epc=bytes(range((t.pc >> 11) * 2)),
        rssi_dbm=t.rssi_dbm,
    )
)


@settings(derandomize=True)  # same examples on every run
@given(st.lists(tags, min_size=1, max_size=5), st.binary(max_size=8))
def test_round_trip_through_noise(frames: list[uhf.TagRead], noise: bytes) -> None:
    stream = noise.replace(b"\xa0", b"") + b"".join(uhf.encode_response(f) for f in frames)
    decoded, _ = decode_all(stream)
    assert decoded == frames


@settings(derandomize=True)  # same examples on every run
@given(tags)
def test_every_prefix_of_a_tag_frame_is_incomplete(tag: uhf.TagRead) -> None:
    wire = uhf.encode_response(tag)
    for cut in range(len(wire)):
        with pytest.raises(uhf.Incomplete):
            uhf.decode_response(wire[:cut])
    assert uhf.decode_response(wire) == (tag, len(wire))
