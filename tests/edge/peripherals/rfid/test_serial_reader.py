"""The serial UHF client against the R2000 simulator on a pty: counts, line noise, unplugging."""

import asyncio
from pathlib import Path

from edge.peripherals.rfid.count import CountSession
from edge.peripherals.rfid.pipeline import ReadPipeline
from edge.peripherals.rfid.serial_client import SerialReaderSettings, SerialUhfReader
from edge.peripherals.rfid.serial_simulator import SerialUhfSimulator
from edge.peripherals.rfid.tag_field import TagField

from ..waiting import until
from .conftest import GTINS, MemoryJournal

GUARD_S = 30


def settings(path: Path, **overrides: object) -> SerialReaderSettings:
    values: dict[str, object] = {
        "port": str(path),
        "response_timeout_s": 0.5,
        "backoff_base_s": 0.01,
        "backoff_cap_s": 0.05,
    }
    values.update(overrides)
    return SerialReaderSettings(**values)  # type: ignore[arg-type]


async def test_count_of_2000_tags_through_a_noisy_serial_line(
    tmp_path: Path,
    population: tuple[bytes, ...],
    on_shelf: dict[str, int],
    expected: dict[str, int],
) -> None:
    field = TagField(epcs=population, miss_rate=0.2, seed=11)
    session = CountSession(session_id="C-2", expected=expected)
    async with (
        asyncio.timeout(GUARD_S),
        SerialUhfSimulator(
            field=field, link=tmp_path / "ttyUHF0", corrupt_rate=0.01, noise_rate=0.01
        ) as sim,
        SerialUhfReader(name="handheld", settings=settings(sim.path), on_read=session.add) as r,
    ):
        session.start()
        await until(lambda: session.distinct_tags == len(population))
        session.stop()
    assert session.totals() == on_shelf
    assert {line.gtin: line.variance for line in session.variance().lines if line.variance}[
        GTINS[0]
    ] == -5
    garbled = r.health.counters["checksum_error"] + r.health.counters["frame_garbled"]
    assert garbled >= sim.corrupted > 0
    assert r.firmware == (8, 1)
    journal = MemoryJournal()
    assert await session.commit(journal) == 1


async def test_cable_pulled_mid_round_then_plugged_back(
    tmp_path: Path, population: tuple[bytes, ...]
) -> None:
    field = TagField(epcs=population[:200], seed=12)
    pipeline = ReadPipeline()
    async with (
        asyncio.timeout(GUARD_S),
        SerialUhfSimulator(field=field, link=tmp_path / "ttyUHF0") as sim,
        SerialUhfReader(name="handheld", settings=settings(sim.path), on_read=pipeline.add) as r,
    ):
        await until(lambda: r.rounds >= 1)
        sim.truncate_next_round()
        await until(lambda: r.health.counters["disconnect"] >= 1)
        assert not r.health.connected
        await sim.plug_in()
        rounds = r.rounds
        await until(lambda: r.rounds > rounds + 1)
        assert r.sessions == 2
        assert r.health.connected
        assert len(pipeline) == 200


async def test_antennas_are_switched_in_turn(tmp_path: Path, population: tuple[bytes, ...]) -> None:
    field = TagField(epcs=population[:20], seed=13)
    antennas_seen: set[int] = set()
    pipeline = ReadPipeline()

    def on_read(obs: object) -> None:
        antennas_seen.add(obs.antenna)  # type: ignore[attr-defined]
        pipeline.add(obs)  # type: ignore[arg-type]

    async with (
        asyncio.timeout(GUARD_S),
        SerialUhfSimulator(field=field, link=tmp_path / "ttyUHF0") as sim,
        SerialUhfReader(
            name="portal", settings=settings(sim.path, antennas=(1, 2, 4)), on_read=on_read
        ),
    ):
        await until(lambda: len(antennas_seen) == 3)
    assert antennas_seen == {1, 2, 4}
