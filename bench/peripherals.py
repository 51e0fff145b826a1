"""Peripheral benchmarks: RFID decode + de-dup throughput and memory, receipt layout latency.

Run: ``.venv/bin/python bench/peripherals.py [--rounds N]``. Prints a table and writes
``bench/results/peripherals.json``. One core, no I/O: it measures our code, not a socket. Each
figure is measured once per round (default 5, ``bench/rounds.py``) and reported as the median
of the rounds with their spread.

* RFID: 1,000,000 tag reads of a fixed 2,000-tag population, as LLRP RO_ACCESS_REPORT bytes
  (100 tags per report) and as R2000 serial frames, decoded and fed into a count session.
  Goal: >= 5,000 reads/s; memory (RSS and tracemalloc) sampled every 100,000 reads stays flat.
* Receipt: layout of a 12-line receipt with a raster QR code. Goal: p99 < 20 ms. Run three
  ways: ASCII names; mixed-script names (accents over several code pages, CJK and emoji
  replaced with ``?``); and the same with a GB18030 double-byte mode (``FS &`` … ``FS .``).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rounds import Goal, Rounds, add_rounds_argument
from edge.peripherals.printer.layout import render_receipt
from edge.peripherals.printer.receipt import Receipt, ReceiptLine, TaxRow, Tender
from edge.peripherals.printer.settings import PaperSettings
from edge.peripherals.rfid.count import CountSession
from edge.peripherals.rfid.observation import TagObservation
from edge.peripherals.rfid.tag_field import make_gtin, sgtin_population
from protocols import llrp
from protocols import uhf_serial as uhf

READS = 1_000_000
POPULATION = {make_gtin("0614141", item): 100 for item in range(1, 21)}
SAMPLE_EVERY = 50_000
RECEIPTS = 500


def llrp_stream(epcs: tuple[bytes, ...], rng: random.Random) -> list[bytes]:
    """Encoded RO_ACCESS_REPORTs: a window reused round-robin to reach READS reads."""
    reports = []
    for start in range(0, 20_000, 100):
        tags = tuple(
            llrp.TagReportData(
                epc=rng.choice(epcs),
                antenna_id=rng.randint(1, 4),
                peak_rssi=rng.randint(-80, -40),
                first_seen_utc_us=1_700_000_000_000_000 + start,
                seen_count=1,
            )
            for _ in range(100)
        )
        reports.append(llrp.encode(llrp.ROAccessReport(message_id=start, tags=tags)))
    return reports


def serial_stream(epcs: tuple[bytes, ...], rng: random.Random) -> bytes:
    """20,000 real-time inventory tag frames, concatenated as they come off the UART."""
    frames = (
        uhf.encode_response(
            uhf.TagRead(
                address=1,
                antenna=rng.randint(1, 4),
                channel=rng.randrange(50),
                pc=0x3000,
                epc=rng.choice(epcs),
                rssi_dbm=rng.randint(-80, -40),
            )
        )
        for _ in range(20_000)
    )
    return b"".join(frames)


def memory_mb() -> tuple[float, float]:
    """(RSS, tracemalloc current) in MiB."""
    rss = psutil.Process().memory_info().rss / 2**20
    return rss, tracemalloc.get_traced_memory()[0] / 2**20


def bench_llrp(epcs: tuple[bytes, ...], reads_wanted: int) -> dict[str, object]:
    reports = llrp_stream(epcs, random.Random(1))
    session = CountSession(session_id="bench", expected=POPULATION)
    session.start()
    samples = []
    reads = 0
    gc.collect()
    t0 = time.perf_counter()
    i = 0
    while reads < reads_wanted:
        wire = reports[i % len(reports)]
        i += 1
        message, _ = llrp.decode(wire)
        assert isinstance(message, llrp.ROAccessReport)
        for tag in message.tags:
            session.add(TagObservation(tag.epc, tag.antenna_id or 0, tag.peak_rssi or -128))
        reads += len(message.tags)
        if reads % SAMPLE_EVERY == 0:
            samples.append((reads, *memory_mb()))
    elapsed = time.perf_counter() - t0
    return {
        "reads": reads,
        "seconds": round(elapsed, 3),
        "reads_per_s": round(reads / elapsed),
        "distinct_epcs": session.distinct_tags,
        "memory_samples": [
            {"reads": r, "rss_mib": round(rss, 1), "traced_mib": round(tm, 2)}
            for r, rss, tm in samples
        ],
    }


def bench_serial(epcs: tuple[bytes, ...]) -> dict[str, object]:
    stream = serial_stream(epcs, random.Random(2))
    session = CountSession(session_id="bench", expected=POPULATION)
    session.start()
    reads = 0
    t0 = time.perf_counter()
    while reads < READS // 4:
        view = memoryview(stream)
        pos = 0
        while pos < len(stream):
            frame, used = uhf.decode_response(view[pos:])
            pos += used
            assert isinstance(frame, uhf.TagRead)
            session.add(TagObservation(frame.epc, frame.antenna, frame.rssi_dbm))
            reads += 1
    elapsed = time.perf_counter() - t0
    return {"reads": reads, "seconds": round(elapsed, 3), "reads_per_s": round(reads / elapsed)}


MIXED_NAMES = (
    "Crème brûlée",
    "Dvořák Łódź spécialité",
    "有機栽培コーヒー豆 500g",
    "Tee 🍵 grün",
    "Ｆｕｌｌｗｉｄｔｈ ｎａｍｅ",
    "Ελληνικό γιαούρτι",
)


def sample_receipt(n_lines: int = 12, *, mixed: bool = False) -> Receipt:
    lines = tuple(
        ReceiptLine(
            description=MIXED_NAMES[i % len(MIXED_NAMES)]
            if mixed
            else f"Item number {i} with a long name",
            quantity=Decimal(i % 3 + 1),
            unit_price=Decimal("3.49"),
            amount=Decimal("3.49") * (i % 3 + 1),
        )
        for i in range(n_lines)
    )
    total = sum((line.amount for line in lines), Decimal(0))
    return Receipt(
        store_name="Corner Shop",
        header_lines=("1 Main Street", "VAT GB123456789"),
        register="R1",
        receipt_number="000123",
        issued_at=datetime(2026, 11, 21, 10, 0),
        cashier="Ana",
        lines=lines,
        total=total,
        tax_rows=(
            TaxRow(label="VAT", rate=Decimal(20), net=total / Decimal("1.2"), tax=total / 6),
        ),
        tenders=(Tender(kind="Card", amount=total),),
        footer_lines=("Thank you!",),
    )


def bench_receipt(*, mixed: bool = False, paper: PaperSettings | None = None) -> dict[str, object]:
    receipt, paper = sample_receipt(mixed=mixed), paper or PaperSettings()
    render_receipt(receipt, paper)  # warm caches (profiles, code pages)
    times = []
    for _ in range(RECEIPTS):
        t0 = time.perf_counter()
        render_receipt(receipt, paper)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "receipts": RECEIPTS,
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 2),
        "max_ms": round(times[-1], 2),
    }


def _pair(result: dict[str, object]) -> str:
    return f"{result['p50_ms']} / {result['p99_ms']}"


def one_round() -> dict[str, Any]:
    """Every figure once: LLRP and serial decode + de-dup, memory over a session, receipts."""
    epcs = sgtin_population(POPULATION)
    llrp_result = bench_llrp(epcs, READS)  # throughput, and RSS every SAMPLE_EVERY reads
    tracemalloc.start()  # Python-heap view of the same session; tracing slows it, so shorter
    traced = bench_llrp(epcs, READS // 4)
    tracemalloc.stop()
    return {
        "llrp_decode_dedup": llrp_result,
        "llrp_traced_memory": traced["memory_samples"],
        "serial_decode_dedup": bench_serial(epcs),
        "receipt_layout": bench_receipt(),
        "receipt_layout_mixed_scripts": bench_receipt(mixed=True),
        "receipt_layout_gb18030_mode": bench_receipt(
            mixed=True, paper=PaperSettings(profile="TM-T20II", cjk="gb18030")
        ),
    }


def record(rounds: Rounds, result: dict[str, Any]) -> None:
    """One round's figures, with the goals the module's docstring states."""
    reads = Goal(">=", 5_000)
    rounds.add(
        "llrp_reads_per_s",
        result["llrp_decode_dedup"]["reads_per_s"],
        label="LLRP decode + de-dup",
        unit="reads/s",
        goal=reads,
        digits=0,
    )
    rounds.add(
        "serial_reads_per_s",
        result["serial_decode_dedup"]["reads_per_s"],
        label="serial 0xA0 decode + de-dup",
        unit="reads/s",
        goal=reads,
        digits=0,
    )
    samples = result["llrp_decode_dedup"]["memory_samples"]
    rounds.add(
        "llrp_rss_growth_mib",
        samples[-1]["rss_mib"] - samples[0]["rss_mib"],
        label=f"  RSS growth over {READS:,} reads",
        unit="MiB",
    )
    traced = result["llrp_traced_memory"]
    rounds.add(
        "llrp_traced_growth_mib",
        traced[-1]["traced_mib"] - traced[0]["traced_mib"],
        label=f"  Python heap growth over {READS // 4:,} reads",
        unit="MiB",
        digits=2,
    )
    for key, label in [
        ("receipt_layout", "receipt layout"),
        ("receipt_layout_mixed_scripts", "  mixed scripts"),
        ("receipt_layout_gb18030_mode", "  mixed, GB18030 mode"),
    ]:
        layout = result[key]
        rounds.add(f"{key}_p50_ms", layout["p50_ms"], label=f"{label} p50", unit="ms", digits=2)
        rounds.add(
            f"{key}_p99_ms",
            layout["p99_ms"],
            label=f"{label} p99",
            unit="ms",
            goal=Goal("<", 20),
            digits=2,
        )


def main(rounds: Rounds) -> None:
    per_round = []
    for _ in rounds.each():
        result = one_round()
        record(rounds, result)
        per_round.append(result)
    print()
    print(rounds.table())
    rounds.write(
        ROOT / "bench" / "results" / "peripherals.json",
        python=sys.version.split()[0],
        per_round=per_round,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_rounds_argument(parser)
    main(Rounds("peripherals", rounds=parser.parse_args().rounds))
