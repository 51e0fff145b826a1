"""The LLRP client against the LLRP simulator on loopback: counts, keepalives, drops, garbage."""

import asyncio
import json
import logging

import pytest

from edge.peripherals.rfid.count import EVENT_KIND, CountSession
from edge.peripherals.rfid.llrp_client import LlrpReader, LlrpSettings, _Link
from edge.peripherals.rfid.llrp_simulator import LlrpReaderSimulator
from edge.peripherals.rfid.pipeline import ReadPipeline
from edge.peripherals.rfid.tag_field import TagField, make_gtin
from protocols import llrp

from ..waiting import until
from .conftest import GTINS, MemoryJournal

GUARD_S = 30  # only against hangs


def settings(port: int, **overrides: object) -> LlrpSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "keepalive_ms": 200,
        "backoff_base_s": 0.01,
        "backoff_cap_s": 0.05,
        "response_timeout_s": 5.0,
    }
    values.update(overrides)
    return LlrpSettings(**values)  # type: ignore[arg-type]


async def test_count_of_2000_tags_reports_gtin_totals_and_variance(
    population: tuple[bytes, ...], on_shelf: dict[str, int], expected: dict[str, int]
) -> None:
    field = TagField(epcs=population, miss_rate=0.3, antennas=(1, 2, 3, 4), seed=7)
    session = CountSession(session_id="C-1", expected=expected, location="aisle 3")
    journal = MemoryJournal()
    async with asyncio.timeout(GUARD_S), LlrpReaderSimulator(field=field) as sim:
        session.start()
        async with LlrpReader(name="door", settings=settings(sim.port), on_read=session.add):
            await until(lambda: session.distinct_tags == len(population))
        session.stop()
        seq = await session.commit(journal)
    assert session.totals() == on_shelf
    report = session.variance()
    off = {line.gtin: line.variance for line in report.lines if line.variance}
    assert off == {GTINS[0]: -5, GTINS[1]: -1, GTINS[2]: 2, make_gtin("0614141", 999): -4}
    assert report.reads >= len(population)
    kind, body = journal.events[0]
    assert (seq, kind, body["counted_total"], body["expected_total"]) == (1, EVENT_KIND, 2000, 2008)
    assert json.loads(json.dumps(body)) == body  # JSON-able, ints only
    assert sim.rospecs == {}  # the client deleted its ROSpec on the way out


async def test_keepalives_are_acked_and_capabilities_read(population: tuple[bytes, ...]) -> None:
    field = TagField(epcs=population[:10], reads_per_second=200, seed=1)
    pipeline = ReadPipeline()
    async with (
        asyncio.timeout(GUARD_S),
        LlrpReaderSimulator(field=field) as sim,
        LlrpReader(
            name="door", settings=settings(sim.port, keepalive_ms=20), on_read=pipeline.add
        ) as reader,
    ):
        await until(lambda: sim.keepalive_acks >= 3)
        assert reader.capabilities is not None
        assert reader.capabilities.firmware == "sim-1.0"
        assert reader.health.connected


async def test_reconnects_after_a_network_drop(population: tuple[bytes, ...]) -> None:
    field = TagField(epcs=population[:50], reads_per_second=5000, seed=2)
    pipeline = ReadPipeline()
    async with (
        asyncio.timeout(GUARD_S),
        LlrpReaderSimulator(field=field) as sim,
        LlrpReader(name="door", settings=settings(sim.port), on_read=pipeline.add) as r,
    ):
        await r.inventorying.wait()
        await until(lambda: pipeline.reads > 0)
        sim.drop_connections()
        await until(lambda: r.sessions == 2 and r.inventorying.is_set())
        reads_before = pipeline.reads
        await until(lambda: pipeline.reads > reads_before)
        assert r.health.counters["disconnect"] == 1
        assert sim.connections == 2


async def test_garbage_on_the_wire_is_counted_and_survived(population: tuple[bytes, ...]) -> None:
    field = TagField(epcs=population[:50], reads_per_second=5000, seed=3)
    pipeline = ReadPipeline()
    async with (
        asyncio.timeout(GUARD_S),
        LlrpReaderSimulator(field=field) as sim,
        LlrpReader(name="door", settings=settings(sim.port), on_read=pipeline.add) as r,
    ):
        await r.inventorying.wait()
        sim.inject_garbage()
        await until(lambda: r.sessions == 2 and r.inventorying.is_set())
        assert r.health.counters["frame_garbled"] == 1
        assert r.health.counters["stream_lost"] == 1
        reads_before = pipeline.reads
        await until(lambda: pipeline.reads > reads_before)


async def test_silent_reader_is_dropped_and_retried(
    population: tuple[bytes, ...], caplog: pytest.LogCaptureFixture
) -> None:
    """A reader that stops sending keepalives is declared gone after the missed periods.

    Read from the log, not ``health.error``: the reconnect's full-jitter wait may be near zero,
    so the next session can clear the error before the test looks.
    """
    field = TagField(epcs=(), seed=4)
    async with asyncio.timeout(GUARD_S), LlrpReaderSimulator(field=field) as sim:
        reader = LlrpReader(
            name="door",
            settings=settings(sim.port, keepalive_ms=20, keepalive_misses=2),
            on_read=ReadPipeline().add,
        )
        sim.send_keepalives = False
        async with reader:
            await until(lambda: reader.health.counters["disconnect"] >= 1)
    warnings = [rec.getMessage() for rec in caplog.records if "keepalive" in rec.getMessage()]
    assert warnings[0].startswith("rfid door: no keepalive for 0.04s — ")


SINGULATION_DETAILS = llrp.RawTv(18, bytes.fromhex("00030005"))  # belongs in an AISpecEvent


async def test_a_misplaced_parameter_in_every_tag_report_keeps_the_reads(
    population: tuple[bytes, ...], caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: C1G2SingulationDetails inside TagReportData made the client drop the report."""
    field = TagField(epcs=population[:50], reads_per_second=5000, seed=5)
    pipeline = ReadPipeline()
    async with asyncio.timeout(GUARD_S), LlrpReaderSimulator(field=field) as sim:
        sim.misplaced = (SINGULATION_DETAILS,)
        async with LlrpReader(name="door", settings=settings(sim.port), on_read=pipeline.add) as r:
            await until(lambda: len(pipeline) == 50)
            await until(lambda: r.health.counters["misplaced_parameter"] >= 50)
            assert (r.sessions, r.health.counters["frame_garbled"]) == (1, 0)
            assert r.health.connected
    assert {sighting.epc for sighting in pipeline} == set(population[:50])
    warnings = [m for rec in caplog.records if "misplaced_parameter" in (m := rec.getMessage())]
    assert warnings == [
        "rfid door: the reader sends C1G2SingulationDetails (TV 18) where LLRP does not place it; "
        "its reads are kept and the parameter ignored (counted as misplaced_parameter). Nothing "
        "to do for the count; if the reader's vendor has a firmware update, apply it"
    ]


async def test_an_answer_after_its_request_gave_up_is_counted_not_fatal(
    population: tuple[bytes, ...], caplog: pytest.LogCaptureFixture
) -> None:
    """A busy reader answers after the request's timeout: the connection's receiver counts the
    late answer and reads on. It once set the result of the given-up (cancelled) future and died
    with InvalidStateError — in CI, a hub's shutdown whose goodbye timed out under load."""
    caplog.set_level(logging.INFO, logger="edge.peripherals.rfid.llrp_client")
    field = TagField(epcs=(), seed=5)
    receiving: asyncio.Task[None] | None = None
    async with asyncio.timeout(GUARD_S), LlrpReaderSimulator(field=field) as sim:
        sim.late_by_s = 0.3
        owner = LlrpReader(
            name="busy",
            settings=settings(sim.port, response_timeout_s=0.05),
            on_read=ReadPipeline().add,
        )
        stream_in, stream_out = await asyncio.open_connection("127.0.0.1", sim.port)
        link = _Link(owner, stream_in, stream_out)
        try:
            with pytest.raises(TimeoutError):
                await link.request(llrp.GetReaderCapabilities())
            assert link.pending == {}  # given up: no one waits for that id any more
            receiving = asyncio.create_task(link.receive())
            await until(lambda: owner.health.counters["late_response"] == 1 or receiving.done())
            assert not receiving.done(), receiving.exception()
            sim.late_by_s = 0.0  # the reader catches up: the next request is answered
            response = await link.request(llrp.GetReaderCapabilities())
            assert isinstance(response, llrp.GetReaderCapabilitiesResponse)
        finally:
            stream_out.transport.abort()
            if receiving is not None:
                receiving.cancel()
                await asyncio.gather(receiving, return_exceptions=True)
    assert any("came after its request gave up" in r.getMessage() for r in caplog.records)


async def test_an_answer_in_the_moment_its_request_times_out_is_counted_not_fatal(
    population: tuple[bytes, ...],
) -> None:
    """The timeout cancels the request's future at once; the request forgets its id only when
    its task runs again. An answer received in between (the receiver ran first: CI at load,
    twice) finds a cancelled future under its id; it is a late answer, not a crash."""
    field = TagField(epcs=(), seed=6)
    async with asyncio.timeout(GUARD_S), LlrpReaderSimulator(field=field) as sim:
        sim.late_by_s = 5.0  # the simulator's own answer never comes in the test's time
        owner = LlrpReader(name="busy", settings=settings(sim.port), on_read=ReadPipeline().add)
        stream_in, stream_out = await asyncio.open_connection("127.0.0.1", sim.port)
        link = _Link(owner, stream_in, stream_out)
        try:
            asking = asyncio.create_task(link.request(llrp.CloseConnection()))
            await until(lambda: bool(link.pending))
            (mid,) = link.pending
            asking.cancel()  # what the timeout does: the future is cancelled now…
            assert link.pending[mid].cancelled()  # …and still there until the task runs
            link._dispatch(llrp.CloseConnectionResponse(message_id=mid))  # the answer, now
            assert owner.health.counters["late_response"] == 1
            with pytest.raises(asyncio.CancelledError):
                await asking
            assert link.pending == {}
        finally:
            stream_out.transport.abort()
