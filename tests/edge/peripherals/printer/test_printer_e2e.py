"""End to end: receipts through python-escpos' Network connector onto the simulated printer."""

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import zxingcpp

from edge.peripherals.printer.driver import EscposPrinter
from edge.peripherals.printer.preview import interpret
from edge.peripherals.printer.queue import PrintQueue
from edge.peripherals.printer.receipt import Receipt
from edge.peripherals.printer.service import PrinterService
from edge.peripherals.printer.settings import PrinterSettings
from edge.peripherals.printer.simulator import PrinterSimulator, SerialPrinterSimulator
from mqttlink.backoff import Backoff

from ..waiting import until
from .conftest import ARTIFACTS

GUARD_S = 20  # only against hangs; nothing below asserts on time


@pytest.fixture
async def service(tmp_path: Path, printer_sim: PrinterSimulator) -> AsyncIterator[PrinterService]:
    settings = PrinterSettings(
        connector="network", host="127.0.0.1", port=printer_sim.port, timeout_s=5
    )
    async with (
        PrintQueue(path=tmp_path / "print.db", backoff=Backoff(initial=0.001, cap=0.01)) as queue,
        PrinterService(
            name="front",
            printer=EscposPrinter(name="front", settings=settings),
            queue=queue,
            paper=settings.paper,
        ) as svc,
    ):
        yield svc


async def test_receipt_prints_and_its_qr_and_total_read_back(
    service: PrinterService, printer_sim: PrinterSimulator, receipt: Receipt
) -> None:
    async with asyncio.timeout(GUARD_S):
        job_id = await service.print_receipt(receipt)
        await service.wait_for(job_id, lambda j: j.state == "printed")
        (job,) = await printer_sim.wait_for_jobs(1)
    preview = interpret(bytes(job.data))
    image = preview.to_png(ARTIFACTS / "receipt-network.png")
    assert [r.text for r in zxingcpp.read_barcodes(image)] == ["SF1:R1:000123"]
    assert "TOTAL EUR                            26.08" in preview.text_lines
    assert preview.cuts == 1
    assert service.health.connected
    assert service.health.detail["paper"] == "ok"


async def test_out_of_paper_queues_retries_and_prints_when_paper_is_back(
    service: PrinterService, printer_sim: PrinterSimulator, receipt: Receipt
) -> None:
    printer_sim.paper = "out"
    async with asyncio.timeout(GUARD_S):
        job_id = await service.print_receipt(receipt)
        waiting = await service.wait_for(job_id, lambda j: j.attempts >= 2)
        assert (waiting.state, waiting.last_error) == ("queued", "paper_out")
        assert service.health.error == "front: out of paper"
        assert printer_sim.printed_jobs == []
        printer_sim.paper = "ok"
        printed = await service.wait_for(job_id, lambda j: j.state == "printed")
        (job,) = await printer_sim.wait_for_jobs(1)
    assert printed.attempts > waiting.attempts
    assert "Thank you!" in interpret(bytes(job.data)).text_lines
    assert service.health.error is None
    assert service.health.counters["job_retry_paper_out"] >= 2


async def test_unplugged_printer_gets_the_job_once_plugged_back(
    service: PrinterService, printer_sim: PrinterSimulator, receipt: Receipt
) -> None:
    await printer_sim.unplug()
    async with asyncio.timeout(GUARD_S):
        job_id = await service.print_receipt(receipt)
        await service.wait_for(job_id, lambda j: j.attempts >= 1)
        assert not service.health.connected
        await printer_sim.plug_in()
        await service.wait_for(job_id, lambda j: j.state == "printed")
    assert len(printer_sim.printed_jobs) == 1


async def test_reprint_sends_the_same_bytes_again(
    service: PrinterService, printer_sim: PrinterSimulator, receipt: Receipt
) -> None:
    async with asyncio.timeout(GUARD_S):
        first = await service.print_receipt(receipt)
        await service.wait_for(first, lambda j: j.state == "printed")
        again = await service.reprint("000123")
        assert again is not None
        await service.wait_for(again, lambda j: j.state == "printed")
        one, two = await printer_sim.wait_for_jobs(2)
    assert one.data == two.data


async def test_drawer_kick_reaches_the_printer(
    service: PrinterService, printer_sim: PrinterSimulator
) -> None:
    async with asyncio.timeout(GUARD_S):
        job_id = await service.open_drawer()
        await service.wait_for(job_id, lambda j: j.state == "printed")
        (job,) = await printer_sim.wait_for_jobs(1)
    assert interpret(bytes(job.data)).drawer_kicks == [0]  # ESC p 0: connector pin 2


@pytest.mark.parametrize(
    ("paper", "cover_open", "expected"),
    [
        pytest.param("ok", False, "ok", id="ok"),
        pytest.param("near_end", False, "near_end", id="near-end"),
        pytest.param("out", False, "out", id="out"),
    ],
)
async def test_health_reads_real_status_bytes(
    service: PrinterService,
    printer_sim: PrinterSimulator,
    paper: str,
    cover_open: bool,
    expected: str,
) -> None:
    printer_sim.paper = paper  # type: ignore[assignment]
    printer_sim.cover_open = cover_open
    health = await service.check_health()
    assert (health.connected, health.detail["paper"]) == (True, expected)
    assert printer_sim.status_requests == 3


async def test_health_of_an_unplugged_printer(
    service: PrinterService, printer_sim: PrinterSimulator
) -> None:
    await printer_sim.unplug()
    health = await service.check_health()
    assert not health.connected
    assert health.error is not None


async def test_connection_lost_mid_receipt_prints_the_whole_receipt_again(
    service: PrinterService, printer_sim: PrinterSimulator, receipt: Receipt
) -> None:
    printer_sim.cut_next_job_after = 200
    async with asyncio.timeout(GUARD_S):
        job_id = await service.print_receipt(receipt)
        job = await service.wait_for(job_id, lambda j: j.state == "printed")
        partial, whole = await printer_sim.wait_for_jobs(2)
    assert job.attempts == 2
    assert len(partial.data) < len(whole.data)
    assert interpret(bytes(whole.data)).cuts == 1
    assert service.health.counters["job_retry_unavailable"] == 1


async def test_file_connector_writes_the_job(tmp_path: Path, receipt: Receipt) -> None:
    out = tmp_path / "lp0"
    settings = PrinterSettings(connector="file", file_path=str(out))
    async with (
        PrintQueue(path=tmp_path / "print.db") as queue,
        PrinterService(
            name="file",
            printer=EscposPrinter(name="file", settings=settings),
            queue=queue,
            paper=settings.paper,
        ) as svc,
    ):
        job_id = await svc.print_receipt(dataclasses.replace(receipt, code="barcode"))
        await svc.wait_for(job_id, lambda j: j.state == "printed")
    preview = interpret(out.read_bytes())
    image = preview.to_png(ARTIFACTS / "receipt-barcode.png")
    assert [(r.format.name, r.text) for r in zxingcpp.read_barcodes(image)] == [
        ("Code128", "000123")
    ]


async def test_serial_connector_prints_and_waits_for_paper(
    tmp_path: Path, receipt: Receipt
) -> None:
    async with SerialPrinterSimulator(link=tmp_path / "ttyS0") as sim:
        settings = PrinterSettings(
            connector="serial", serial_device=str(sim.path), baudrate=19200, timeout_s=5
        )
        sim.paper = "out"
        async with (
            asyncio.timeout(GUARD_S),
            PrintQueue(
                path=tmp_path / "print.db", backoff=Backoff(initial=0.001, cap=0.01)
            ) as queue,
            PrinterService(
                name="serial",
                printer=EscposPrinter(name="serial", settings=settings),
                queue=queue,
                paper=settings.paper,
            ) as svc,
        ):
            job_id = await svc.print_receipt(receipt)
            await svc.wait_for(job_id, lambda j: j.attempts >= 1)
            sim.paper = "ok"
            await svc.wait_for(job_id, lambda j: j.state == "printed")
            (job,) = await sim.wait_for_jobs(1)
    assert "Thank you!" in interpret(bytes(job.data)).text_lines


async def test_idle_service_keeps_health_fresh(
    tmp_path: Path, printer_sim: PrinterSimulator
) -> None:
    settings = PrinterSettings(connector="network", host="127.0.0.1", port=printer_sim.port)
    printer_sim.paper = "near_end"
    async with (
        asyncio.timeout(GUARD_S),
        PrintQueue(path=tmp_path / "print.db") as queue,
        PrinterService(
            name="idle",
            printer=EscposPrinter(name="idle", settings=settings),
            queue=queue,
            paper=settings.paper,
            idle_probe_s=0.01,
        ) as svc,
    ):
        await until(lambda: "paper" in svc.health.detail)
    assert (svc.health.connected, svc.health.detail["paper"]) == (True, "near_end")
    assert printer_sim.printed_jobs == []


async def test_paper_back_prints_now_not_after_a_long_backoff(
    tmp_path: Path, printer_sim: PrinterSimulator, receipt: Receipt
) -> None:
    """A job whose next retry is an hour away prints once the rechecked printer has paper."""
    settings = PrinterSettings(
        connector="network", host="127.0.0.1", port=printer_sim.port, timeout_s=5
    )
    printer_sim.paper = "out"
    async with (
        asyncio.timeout(GUARD_S),  # far shorter than the backoff: only the recheck can print
        PrintQueue(
            path=tmp_path / "print.db",
            backoff=Backoff(initial=3600, cap=3600, uniform=lambda _low, high: high),
        ) as queue,
        PrinterService(
            name="front",
            printer=EscposPrinter(name="front", settings=settings),
            queue=queue,
            paper=settings.paper,
            recheck_s=0.05,
        ) as svc,
    ):
        job_id = await svc.print_receipt(receipt)
        waiting = await svc.wait_for(job_id, lambda j: j.attempts >= 1)
        assert waiting.state == "queued"
        assert await queue.seconds_until_next() > 60
        printer_sim.paper = "ok"
        printed = await svc.wait_for(job_id, lambda j: j.state == "printed")
    assert printed.attempts == 2
    assert svc.health.error is None
