"""Golden LLRP vectors, written by hand from the LLRP 1.0.1 tables (section noted per group).

Header (4.2.1): ``rsvd(3)=0 ver(3)=1 type(10)`` -> 0x0400 | type; length u32; message id u32.
"""

import pytest

from protocols import llrp


def h(text: str) -> bytes:
    """Hex with spaces and comments stripped: ``#`` to end of line is a comment."""
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


GOLDEN = [
    pytest.param(
        h("043e 0000000a 00000005"),  # KEEPALIVE type 62 (16.1.40), empty body
        llrp.Keepalive(message_id=5),
        id="keepalive",
    ),
    pytest.param(
        h("0448 0000000a 00000005"),  # KEEPALIVE_ACK type 72 (16.1.41)
        llrp.KeepaliveAck(message_id=5),
        id="keepalive-ack",
    ),
    pytest.param(
        h("""
        0401 0000000b 00000001   # GET_READER_CAPABILITIES type 1, length 11
        00                       # RequestedData 0 = all (16.1.1)
        """),
        llrp.GetReaderCapabilities(message_id=1),
        id="get-reader-capabilities",
    ),
    pytest.param(
        h("""
        0416 0000000e 00000007   # START_ROSPEC type 22, length 14
        00000001                 # ROSpecID 1 (16.1.17)
        """),
        llrp.StartROSpec(message_id=7, rospec_id=1),
        id="start-rospec",
    ),
    pytest.param(
        h("""
        0418 0000000e 00000008   # ENABLE_ROSPEC type 24
        0000007b                 # ROSpecID 123
        """),
        llrp.EnableROSpec(message_id=8, rospec_id=123),
        id="enable-rospec",
    ),
    pytest.param(
        h("""
        0415 0000000e 00000009   # DELETE_ROSPEC type 21
        00000000                 # ROSpecID 0 = all ROSpecs
        """),
        llrp.DeleteROSpec(message_id=9, rospec_id=0),
        id="delete-all-rospecs",
    ),
    pytest.param(
        h("""
        041e 00000012 00000002   # ADD_ROSPEC_RESPONSE type 30, length 18
        011f 0008                # LLRPStatus TLV type 287 (16.2.8.1), length 8
        0000 0000                # StatusCode M_Success, ErrorDescription ""
        """),
        llrp.AddROSpecResponse(message_id=2),
        id="add-rospec-response-success",
    ),
    pytest.param(
        h("""
        0404 00000017 00000003   # CLOSE_CONNECTION_RESPONSE type 4, length 23
        011f 000d                # LLRPStatus, length 13
        0065                     # StatusCode 101 = M_ParameterError
        0005 6f6f707321          # ErrorDescription "oops!"
        """),
        llrp.CloseConnectionResponse(
            message_id=3, status=llrp.LlrpStatus(code=101, description="oops!")
        ),
        id="close-connection-response-error",
    ),
    pytest.param(
        h("""
        0403 0000001f 00000004   # SET_READER_CONFIG type 3, length 31
        00                       # ResetToFactoryDefault 0, reserved 7 bits
        00f4 000b                # ReaderEventNotificationSpec TLV 244, length 11
        00f5 0007 0001 80        #   EventNotificationState 245: type 1, enabled
        00dc 0009 01 000003e8    # KeepaliveSpec TLV 220: periodic, 1000 ms
        """),
        llrp.SetReaderConfig(
            message_id=4,
            events=(llrp.EventNotificationState(event_type=1, enabled=True),),
            keepalive=llrp.KeepaliveSpec(period_ms=1000),
        ),
        id="set-reader-config-keepalive",
    ),
    pytest.param(
        h("""
        043f 00000020 00000000   # READER_EVENT_NOTIFICATION type 63, length 32
        00f6 0016                # ReaderEventNotificationData TLV 246, length 22
        0080 000c 0005ea6c2b8c0000  # UTCTimestamp TLV 128: microseconds
        0100 0006 0000           # ConnectionAttemptEvent TLV 256: Success
        """),
        llrp.ReaderEventNotification(
            data=llrp.ReaderEventNotificationData(
                timestamp_us=0x0005EA6C2B8C0000, connection_attempt=0
            )
        ),
        id="reader-event-connection-attempt",
    ),
    pytest.param(
        h("""
        043d 0000002c 00000000   # RO_ACCESS_REPORT type 61, length 44
        00f0 0022                # TagReportData TLV 240, length 34
        8d 3074257bf7194e4000001a85  # EPC-96 TV type 13 (16.2.7.3.1): 12 bytes
        81 0002                  # AntennaID TV 1: antenna 2
        86 c4                    # PeakRSSI TV 6: -60 dBm
        82 0005ea6c2b8c0000      # FirstSeenTimestampUTC TV 2
        88 0003                  # TagSeenCount TV 8: 3
        """),
        llrp.ROAccessReport(
            tags=(
                llrp.TagReportData(
                    epc=bytes.fromhex("3074257bf7194e4000001a85"),
                    antenna_id=2,
                    peak_rssi=-60,
                    first_seen_utc_us=0x0005EA6C2B8C0000,
                    seen_count=3,
                ),
            )
        ),
        id="ro-access-report-epc96",
    ),
    pytest.param(
        h("""
        043d 00000023 00000000   # RO_ACCESS_REPORT, length 35
        00f0 0019                # TagReportData, length 25
        00f1 0012 0060           # EPCData TLV 241, length 18, EPCLengthBits 96
        e2000017221101441890    # 12 EPC bytes (a TID-like, non-SGTIN EPC)
        9e47                     #
        81 0001                  # AntennaID 1
        """),
        llrp.ROAccessReport(
            tags=(
                llrp.TagReportData(
                    epc=bytes.fromhex("e20000172211014418909e47"), antenna_id=1, epc_bits=96
                ),
            )
        ),
        id="ro-access-report-epcdata",
    ),
    pytest.param(
        h("""
        043d 00000023 00000000   # RO_ACCESS_REPORT, length 35
        00f0 0019                # TagReportData, length 25
        8d 3074257bf7194e4000001a85  # EPC-96
        81 0002                  # AntennaID 2
        92 0003 0005             # C1G2SingulationDetails TV 18: 3 collision
                                 # slots, 5 empty; LLRP puts it in an AISpecEvent, not here
        """),
        llrp.ROAccessReport(
            tags=(
                llrp.TagReportData(
                    epc=bytes.fromhex("3074257bf7194e4000001a85"),
                    antenna_id=2,
                    misplaced=(llrp.RawTv(18, bytes.fromhex("00030005")),),
                ),
            )
        ),
        id="singulation-details-misplaced-in-tag-report",
    ),
    pytest.param(
        h("""
        043d 00000021 00000000   # RO_ACCESS_REPORT, length 33
        00f0 0017                # TagReportData, length 23
        8d 3074257bf7194e4000001a85  # EPC-96
        81 0001                  # AntennaID 1
        95 1234                  # TV type 21: LLRP defines no such TV, its size is unknowable,
                                 # so it is kept with the rest of the TagReportData
        """),
        llrp.ROAccessReport(
            tags=(
                llrp.TagReportData(
                    epc=bytes.fromhex("3074257bf7194e4000001a85"),
                    antenna_id=1,
                    misplaced=(llrp.RawTv(21, bytes.fromhex("1234")),),
                ),
            )
        ),
        id="unknown-tv-in-tag-report-keeps-the-read",
    ),
    pytest.param(
        h("""
        043d 00000030 00000000   # RO_ACCESS_REPORT, length 48
        00f0 0022                # TagReportData, length 34
        8d 3074257bf7194e4000001a85  # EPC-96
        81 0003                  # AntennaID 3
        87 0007                  # ChannelIndex TV 7 (placed here, not modelled)
        8c 3000                  # C1G2PC TV 12 (AirProtocolTagData)
        93 0000                  # C1G2XPCW1 TV 19 (LLRP 1.1 AirProtocolTagData)
        90 00000001              # AccessSpecID TV 16
        00f2 0004                # RFSurveyReportData TLV 242, empty (placed in the report)
        """),
        llrp.ROAccessReport(
            tags=(
                llrp.TagReportData(
                    epc=bytes.fromhex("3074257bf7194e4000001a85"),
                    antenna_id=3,
                    extra=(
                        llrp.RawTv(7, bytes.fromhex("0007")),
                        llrp.RawTv(12, bytes.fromhex("3000")),
                        llrp.RawTv(19, bytes.fromhex("0000")),
                        llrp.RawTv(16, bytes.fromhex("00000001")),
                    ),
                ),
            ),
            extra=(llrp.RawParameter(242, b""),),
        ),
        id="placed-but-unmodelled-fields-are-extra-not-misplaced",
    ),
    pytest.param(
        h("""
        0414 0000004b 00000002   # ADD_ROSPEC type 20, length 75
        00b1 0041                # ROSpec TLV 177, length 65
        00000001 00 00           # ROSpecID 1, Priority 0, CurrentState Disabled
        00b2 0012                # ROBoundarySpec 178, length 18
        00b3 0005 01             #   ROSpecStartTrigger 179: Immediate
        00b6 0009 00 00000000    #   ROSpecStopTrigger 182: Null, duration 0
        00b7 0018                # AISpec 183, length 24
        0001 0000                #   AntennaCount 1, AntennaID 0 = all
        00b8 0009 00 00000000    #   AISpecStopTrigger 184: Null
        00ba 0007 0001 01        #   InventoryParameterSpec 186: id 1, EPCGlobal C1G2
        00ed 000d 01 0001        # ROReportSpec 237: upon N tags or end of AISpec, N=1
        00ee 0006 1480           #   TagReportContentSelector 238: AntennaID|PeakRSSI|SeenCount
        """),
        llrp.AddROSpec(
            message_id=2,
            rospec=llrp.ROSpec(
                rospec_id=1,
                start_trigger=1,
                report=llrp.ROReportSpec(
                    n=1,
                    content=llrp.ReportContent.ANTENNA_ID
                    | llrp.ReportContent.PEAK_RSSI
                    | llrp.ReportContent.TAG_SEEN_COUNT,
                ),
            ),
        ),
        id="add-rospec-immediate",
    ),
]


@pytest.mark.parametrize(("wire", "message"), GOLDEN)
def test_decode_golden(wire: bytes, message: llrp.Message) -> None:
    assert llrp.decode(wire) == (message, len(wire))


@pytest.mark.parametrize(("wire", "message"), GOLDEN)
def test_encode_golden(wire: bytes, message: llrp.Message) -> None:
    assert llrp.encode(message) == wire


@pytest.mark.parametrize(("wire", "message"), GOLDEN)
def test_every_prefix_is_incomplete(wire: bytes, message: llrp.Message) -> None:
    buf = bytearray()
    for byte in wire[:-1]:
        buf.append(byte)
        with pytest.raises(llrp.Incomplete) as info:
            llrp.decode(buf)
        assert info.value.have == len(buf)
    buf.append(wire[-1])
    assert llrp.decode(buf) == (message, len(wire))


def test_two_messages_in_one_buffer_decode_one_at_a_time() -> None:
    first = llrp.encode(llrp.Keepalive(message_id=1))
    second = llrp.encode(llrp.StartROSpec(message_id=2, rospec_id=9))
    message, used = llrp.decode(first + second)
    assert (message, used) == (llrp.Keepalive(message_id=1), len(first))
    assert llrp.decode((first + second)[used:])[0] == llrp.StartROSpec(message_id=2, rospec_id=9)


def test_unknown_message_type_is_kept_not_fatal() -> None:
    wire = h("04c8 0000000c 00000001 abcd")  # type 200 is not in our subset
    assert llrp.decode(wire) == (
        llrp.UnknownMessage(message_id=1, message_type=200, body=b"\xab\xcd"),
        12,
    )


# Decoded, but not re-encoded byte for byte: the encoder writes what was misplaced at the end.
MISPLACED_BETWEEN_TAGS = h("""
    043d 0000003f 00000000       # RO_ACCESS_REPORT, length 63
    00f0 0014                    # TagReportData, length 20
    8d 3074257bf7194e4000001a85  #   EPC-96
    81 0001                      #   AntennaID 1
    92 0001 0002                 # C1G2SingulationDetails at message level: not placed here
    011f 0008 0000 0000          # LLRPStatus TLV 287: not placed in an RO_ACCESS_REPORT either
    00f0 0014                    # TagReportData, length 20: this read must not be lost
    8d 3074257bf7194e4000001a86  #   EPC-96
    81 0002                      #   AntennaID 2
""")


def test_misplaced_parameters_between_tag_reports_keep_the_reads_after_them() -> None:
    message, used = llrp.decode(MISPLACED_BETWEEN_TAGS)
    assert used == len(MISPLACED_BETWEEN_TAGS)
    assert message == llrp.ROAccessReport(
        tags=(
            llrp.TagReportData(epc=bytes.fromhex("3074257bf7194e4000001a85"), antenna_id=1),
            llrp.TagReportData(epc=bytes.fromhex("3074257bf7194e4000001a86"), antenna_id=2),
        ),
        misplaced=(
            llrp.RawTv(18, bytes.fromhex("00010002")),
            llrp.RawParameter(287, bytes.fromhex("00000000")),
        ),
    )
    assert llrp.decode(llrp.encode(message)) == (message, used)


def test_all_misplaced_gathers_the_report_and_its_tags() -> None:
    singulation = llrp.RawTv(18, bytes(4))
    status = llrp.RawParameter(287, bytes(4))
    report = llrp.ROAccessReport(
        tags=(
            llrp.TagReportData(epc=bytes(12), misplaced=(singulation,)),
            llrp.TagReportData(epc=bytes(12)),
        ),
        misplaced=(status,),
    )
    assert report.all_misplaced == (status, singulation)


MALFORMED = [
    pytest.param(h("083e 0000000a 00000005"), None, id="version-2"),
    pytest.param(h("043e 00000004 00000005"), None, id="length-below-header"),
    pytest.param(h("0416 0000000c 00000007 0001"), 12, id="rospec-id-truncated-in-frame"),
    pytest.param(h("041e 0000000e 00000002 011f0008"), 14, id="status-tlv-overruns-message"),
    pytest.param(h("043d 00000010 00000000 00f0 0006 ff00"), 16, id="unknown-tv-type-127"),
    pytest.param(h("043d 00000010 00000000 00f0 0006 8100"), 16, id="tag-report-without-epc"),
    pytest.param(h("043e 0000000b 00000005 00"), 11, id="keepalive-trailing-byte"),
]


@pytest.mark.parametrize(("wire", "discard"), MALFORMED)
def test_malformed_says_how_to_resync(wire: bytes, discard: int | None) -> None:
    with pytest.raises(llrp.Malformed) as info:
        llrp.decode(wire)
    assert info.value.discard == discard
    assert info.value.message_type is not None
