"""The read pipeline and the count session, fed directly."""

import json
import random

import pytest

from edge.peripherals.rfid.count import EVENT_KIND, CountSession, CountStateError
from edge.peripherals.rfid.observation import TagObservation
from edge.peripherals.rfid.pipeline import ReadPipeline
from edge.peripherals.rfid.tag_field import make_gtin, sgtin_population

from .conftest import MemoryJournal

SSCC = bytes.fromhex("3114257BF4000000000004D2")


def test_pipeline_keeps_best_rssi_and_its_antenna_with_one_record_per_epc() -> None:
    pipeline = ReadPipeline()
    epcs = sgtin_population({make_gtin("0614141", 1): 50})
    rng = random.Random(5)
    for _ in range(100_000):
        pipeline.add(TagObservation(rng.choice(epcs), rng.randint(1, 4), rng.randint(-80, -41)))
    pipeline.add(TagObservation(epcs[0], 3, -40))
    assert (len(pipeline), pipeline.reads) == (50, 100_001)
    best = pipeline.get(epcs[0])
    assert best is not None
    assert (best.rssi_dbm, best.antenna) == (-40, 3)
    assert sum(s.reads for s in pipeline) == 100_001


def test_session_counts_each_epc_once_and_tallies_other_schemes() -> None:
    gtin = make_gtin("0614141", 7)
    epcs = sgtin_population({gtin: 3})
    session = CountSession(session_id="C", expected={gtin: 4})
    session.add(TagObservation(epcs[0], 1, -50))  # before start: ignored
    session.start()
    for epc in [*epcs, *epcs, SSCC, b"\x30\x1c"]:  # the last one is a truncated SGTIN-96
        session.add(TagObservation(epc, 1, -50))
    session.stop()
    session.add(TagObservation(epcs[0], 1, -50))  # after stop: ignored
    report = session.variance()
    assert session.totals() == {gtin: 3}
    assert [(line.gtin, line.variance) for line in report.lines] == [(gtin, -1)]
    assert report.other_tags == {"sscc-96": 1, "malformed": 1}
    assert report.reads == 8


async def test_commit_writes_one_json_event_and_only_once() -> None:
    gtin = make_gtin("0614141", 7)
    session = CountSession(session_id="C", expected={gtin: 1}, location="back room")
    journal = MemoryJournal()
    with pytest.raises(CountStateError):
        await session.commit(journal)
    session.start()
    session.stop()
    assert await session.commit(journal) == 1
    with pytest.raises(CountStateError) as info:
        await session.commit(journal)
    assert info.value.state == "committed"
    ((kind, body),) = journal.events
    assert kind == EVENT_KIND
    assert body["lines"] == [{"gtin": gtin, "expected": 1, "counted": 0, "variance": -1}]
    assert json.loads(json.dumps(body)) == body
