"""Scanner devices: HID hot-plug through the watcher, serial scanners through a pty."""

import asyncio
from pathlib import Path

from edge.peripherals.scanner.hid import HidScannerWatcher
from edge.peripherals.scanner.hid_simulator import SimulatedInputBus, keystrokes
from edge.peripherals.scanner.scan import GS, Scan
from edge.peripherals.scanner.serial_scanner import SerialScanner
from edge.peripherals.scanner.serial_simulator import SerialScannerSimulator
from edge.peripherals.scanner.settings import SerialScannerSettings, WedgeSettings

from ..waiting import until

GUARD_S = 20


async def test_two_scanners_hot_plugged_unplugged_and_back() -> None:
    bus = SimulatedInputBus()
    scans: asyncio.Queue[Scan] = asyncio.Queue()
    bus.plug("/dev/input/event3", "Honeywell Barcode Scanner")
    bus.plug("/dev/input/event4", "AT Translated Set 2 keyboard")  # the kiosk keyboard: left alone
    async with (
        asyncio.timeout(GUARD_S),
        HidScannerWatcher(settings=WedgeSettings(), on_scan=scans.put_nowait, source=bus) as w,
    ):
        bus.send("/dev/input/event3", keystrokes("4006381333931"))
        assert (await scans.get()).text == "4006381333931"
        assert bus.grabbed("/dev/input/event3")
        assert w.active == {"/dev/input/event3"}

        bus.plug("/dev/input/event5", "Zebra DS2208 Scanner")
        w.rescan()
        bus.send("/dev/input/event5", keystrokes("second"))
        assert await scans.get() == Scan(text="second", scanner="Zebra DS2208 Scanner")

        bus.unplug("/dev/input/event3")
        bus.send("/dev/input/event5", keystrokes("still here"))
        assert (await scans.get()).text == "still here"
        assert w.health["/dev/input/event3"].connected is False

        bus.plug("/dev/input/event3", "Honeywell Barcode Scanner")
        w.rescan()
        bus.send("/dev/input/event3", keystrokes(f"01{GS}10"))
        back = await scans.get()
        assert (back.scanner, back.gs1_element_strings) == (
            "Honeywell Barcode Scanner",
            ["01", "10"],
        )
        assert w.health["/dev/input/event3"].counters["disconnect"] == 1


async def test_serial_scanner_frames_noise_and_replug(tmp_path: Path) -> None:
    scans: asyncio.Queue[Scan] = asyncio.Queue()
    settings = SerialScannerSettings(
        port=str(tmp_path / "ttyACM0"),
        prefix="<",
        suffix=">",
        terminator="\r\n",
        aim_ids=True,
        backoff_base_s=0.01,
        backoff_cap_s=0.02,
    )
    async with (
        asyncio.timeout(GUARD_S),
        SerialScannerSimulator(
            link=tmp_path / "ttyACM0", prefix="<", suffix=">", terminator="\r\n"
        ) as sim,
        SerialScanner(name="counter", settings=settings, on_scan=scans.put_nowait) as scanner,
    ):
        await until(lambda: scanner.sessions == 1)  # pyserial flushes input when it opens
        await sim.scan(f"0104006381333931{GS}21XYZ", symbology="]C1")
        first = await scans.get()
        assert (first.text, first.symbology) == (f"0104006381333931{GS}21XYZ", "]C1")
        await sim.send_raw(b"\xff\xfe\r\n")
        await sim.scan("after noise")
        garbled = await scans.get()
        assert scanner.health.counters["frame_garbled"] == 1
        assert garbled.text == "\ufffd\ufffd"
        assert (await scans.get()).text == "after noise"

        sim.unplug()
        # >= 1: with full jitter the reopen may fail again (port still gone) before this looks
        await until(lambda: scanner.health.counters["disconnect"] >= 1)
        sim.plug_in()
        await until(lambda: scanner.sessions == 2)  # a scan before the port reopens is lost
        await sim.scan("after replug")
        assert (await scans.get()).text == "after replug"
        assert scanner.health.connected
