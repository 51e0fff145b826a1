"""Property tests: every message we can build encodes and decodes back to itself."""

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import llrp

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
u64 = st.integers(0, 2**64 - 1)
text = st.text(max_size=20)
mid = {"message_id": u32}

status = st.builds(llrp.LlrpStatus, code=u16, description=text)
raw_tlv = st.builds(llrp.RawParameter, type=st.integers(1000, 1023), body=st.binary(max_size=8))
# parameters LLRP does not place in an RO_ACCESS_REPORT or a TagReportData: kept as misplaced
misplaced = st.one_of(
    st.builds(llrp.RawTv, type=st.just(18), value=st.binary(min_size=4, max_size=4)),
    st.builds(llrp.RawParameter, type=st.integers(1000, 1022), body=st.binary(max_size=8)),
)

tags = st.builds(
    llrp.TagReportData,
    epc=st.binary(min_size=12, max_size=12),
    antenna_id=st.none() | u16,
    peak_rssi=st.none() | st.integers(-128, 127),
    first_seen_utc_us=st.none() | u64,
    seen_count=st.none() | u16,
    extra=st.lists(
        st.builds(llrp.RawTv, type=st.just(7), value=st.binary(min_size=2, max_size=2)), max_size=1
    ).map(tuple),
    misplaced=st.lists(misplaced, max_size=2).map(tuple),
)
tags_epcdata = st.integers(1, 496).flatmap(
    lambda bits: st.builds(
        llrp.TagReportData,
        epc=st.binary(min_size=(bits + 7) // 8, max_size=(bits + 7) // 8),
        epc_bits=st.just(bits),
        antenna_id=st.none() | u16,
    )
)
content = st.integers(0, 0x3FF).map(lambda v: llrp.ReportContent(v << 6))
report_spec = st.builds(llrp.ROReportSpec, trigger=u8, n=u16, content=content)
ai_spec = st.builds(
    llrp.AISpec,
    antenna_ids=st.lists(u16, max_size=4).map(tuple),
    stop_trigger=u8,
    stop_duration_ms=u32,
    inventories=st.lists(
        st.builds(llrp.InventoryParameterSpec, spec_id=u16, protocol_id=u8), min_size=1, max_size=2
    ).map(tuple),
)
rospec = st.builds(
    llrp.ROSpec,
    rospec_id=u32,
    priority=u8,
    current_state=u8,
    start_trigger=u8,
    stop_trigger=u8,
    stop_duration_ms=u32,
    ai_specs=st.lists(ai_spec, min_size=1, max_size=2).map(tuple),
    report=st.none() | report_spec,
)

messages = st.one_of(
    st.builds(llrp.Keepalive, **mid),
    st.builds(llrp.KeepaliveAck, **mid),
    st.builds(llrp.CloseConnection, **mid),
    st.builds(llrp.GetReaderCapabilities, requested_data=u8, **mid),
    st.builds(
        llrp.GetReaderCapabilitiesResponse,
        status=status,
        general=st.none()
        | st.builds(
            llrp.GeneralDeviceCapabilities,
            max_antennas=u16,
            can_set_antenna_properties=st.booleans(),
            has_utc_clock=st.booleans(),
            manufacturer=u32,
            model=u32,
            firmware=text,
        ),
        extra=st.lists(raw_tlv, max_size=2).map(tuple),
        **mid,
    ),
    st.builds(
        llrp.SetReaderConfig,
        reset_to_factory_default=st.booleans(),
        events=st.none()
        | st.lists(
            st.builds(llrp.EventNotificationState, event_type=u16, enabled=st.booleans()),
            max_size=3,
        ).map(tuple),
        report=st.none() | report_spec,
        keepalive=st.none() | st.builds(llrp.KeepaliveSpec, period_ms=u32),
        **mid,
    ),
    *(
        st.builds(cls, status=status, **mid)
        for cls in (
            llrp.SetReaderConfigResponse,
            llrp.AddROSpecResponse,
            llrp.EnableROSpecResponse,
            llrp.StartROSpecResponse,
            llrp.StopROSpecResponse,
            llrp.DeleteROSpecResponse,
            llrp.CloseConnectionResponse,
            llrp.ErrorMessage,
        )
    ),
    *(
        st.builds(cls, rospec_id=u32, **mid)
        for cls in (llrp.EnableROSpec, llrp.StartROSpec, llrp.StopROSpec, llrp.DeleteROSpec)
    ),
    st.builds(llrp.AddROSpec, rospec=rospec, **mid),
    st.builds(
        llrp.ROAccessReport,
        tags=st.lists(tags | tags_epcdata, max_size=5).map(tuple),
        extra=st.lists(
            st.builds(
                llrp.RawParameter, type=st.sampled_from([242, 1023]), body=st.binary(max_size=8)
            ),
            max_size=2,
        ).map(tuple),
        misplaced=st.lists(misplaced, max_size=2).map(tuple),
        **mid,
    ),
    st.builds(
        llrp.ReaderEventNotification,
        data=st.builds(
            llrp.ReaderEventNotificationData,
            timestamp_us=u64,
            uptime=st.booleans(),
            connection_attempt=st.none() | u16,
        ),
        **mid,
    ),
)


@settings(max_examples=300, derandomize=True)
@given(messages)
def test_round_trip(message: llrp.Message) -> None:
    wire = llrp.encode(message)
    assert llrp.decode(wire) == (message, len(wire))


@settings(max_examples=60, derandomize=True)
@given(messages)
def test_every_prefix_is_incomplete(message: llrp.Message) -> None:
    wire = llrp.encode(message)
    for cut in range(len(wire)):
        with pytest.raises(llrp.Incomplete):
            llrp.decode(wire[:cut])


@settings(derandomize=True)  # same examples on every run
@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_escape_the_error_tree(data: bytes) -> None:
    """Any exception other than the codec's own would crash a reader loop."""
    with contextlib.suppress(llrp.LlrpError):
        llrp.decode(data)
