"""Keyboard-wedge scanners through evdev: exclusive grab, several at once, hot-plug.

How it works: :class:`HidScannerWatcher` lists input devices every ``poll_s`` (or at once when
``rescan()`` is called, e.g. from a udev hook) and starts one reader task per device whose name
matches the settings. A reader grabs its device exclusively (so the barcode is not also typed into
the kiosk), decodes events with its own :class:`WedgeDecoder` and hands each scan to
``on_scan``. A device that disappears ends its reader with OSError; when it comes back the next
listing starts a new one. The watcher never restarts and never raises for a device problem.

The OS side sits behind :class:`DeviceSource` so the same code runs on evdev in the store and on
recorded event streams in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import evdev
from evdev import InputEvent

from edge.peripherals.health import DeviceHealth
from edge.peripherals.scanner.scan import OnScan
from edge.peripherals.scanner.settings import WedgeSettings
from edge.peripherals.scanner.wedge import WedgeDecoder
from mqttlink.tasks import ServiceTasks

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InputDeviceInfo:
    """An input device as the OS lists it."""

    path: str
    name: str


class EventStream(Protocol):
    """An opened input device."""

    def grab(self) -> None: ...
    def close(self) -> None: ...
    def events(self) -> AsyncIterator[InputEvent]: ...


class DeviceSource(Protocol):
    """Where input devices come from."""

    def list_devices(self) -> list[InputDeviceInfo]: ...
    def open(self, path: str) -> EventStream: ...


class _EvdevStream:
    def __init__(self, device: evdev.InputDevice[str]) -> None:
        self._device = device

    def grab(self) -> None:
        self._device.grab()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._device.ungrab()
        self._device.close()

    def events(self) -> AsyncIterator[InputEvent]:
        return self._device.async_read_loop()


class EvdevSource:
    """The real ``/dev/input/event*`` devices."""

    def list_devices(self) -> list[InputDeviceInfo]:
        found = []
        for path in evdev.list_devices():
            try:
                device = evdev.InputDevice(path)
            except OSError:
                continue  # vanished between listing and opening, or no permission
            found.append(InputDeviceInfo(path=path, name=device.name))
            device.close()
        return found

    def open(self, path: str) -> EventStream:
        return _EvdevStream(evdev.InputDevice(path))


class HidScannerWatcher:
    """``async with HidScannerWatcher(settings=…, on_scan=…) as scanners:``."""

    def __init__(
        self,
        *,
        settings: WedgeSettings,
        on_scan: OnScan,
        source: DeviceSource | None = None,
    ) -> None:
        self.settings = settings
        self.on_scan = on_scan
        self.source: DeviceSource = source or EvdevSource()
        self.health: dict[str, DeviceHealth] = {}  # by device path
        self._active: dict[str, asyncio.Task[None]] = {}
        self._rescan = asyncio.Event()
        self._tasks = ServiceTasks("HID scanner watcher")

    async def __aenter__(self) -> HidScannerWatcher:
        await self._tasks.start()
        self._tasks.spawn(self._watch(), name="scanner-watch")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._tasks.stop()  # the watcher and every device's reader

    def rescan(self) -> None:
        """Look for added devices now (call from a udev 'add' hook)."""
        self._rescan.set()

    @property
    def active(self) -> set[str]:
        """Paths of the devices being read."""
        return set(self._active)

    def _matches(self, info: InputDeviceInfo) -> bool:
        name = info.name.lower()
        return any(part.lower() in name for part in self.settings.name_contains)

    async def _watch(self) -> None:
        while True:
            self._rescan.clear()
            try:
                devices = self.source.list_devices()
            except OSError as err:
                log.warning("scanner: cannot list input devices: %s", err)
                devices = []
            for info in devices:
                if info.path not in self._active and self._matches(info):
                    task = self._tasks.spawn(self._read(info), name=f"scanner:{info.path}")
                    self._active[info.path] = task
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_s):
                    await self._rescan.wait()

    async def _read(self, info: InputDeviceInfo) -> None:
        health = self.health.setdefault(info.path, DeviceHealth(device=info.name, kind="scanner"))
        decoder = WedgeDecoder(scanner=info.name, settings=self.settings)
        try:
            stream = self.source.open(info.path)
        except OSError as err:
            health.failed(f"cannot open: {err}", connected=False, hint="check udev permissions")
            self._active.pop(info.path, None)
            return
        try:
            stream.grab()
            health.seen()
            health.count("connected")
            async for event in stream.events():
                scan = decoder.feed(event)
                if scan is not None:
                    health.seen()
                    health.count("scans")
                    self.on_scan(scan)
        except OSError as err:
            health.failed(f"gone: {err}", connected=False, hint="replug the scanner")
            health.count("disconnect")
        finally:
            stream.close()
            self._active.pop(info.path, None)
            if decoder.unknown_keys:
                health.count("unknown_keys", decoder.unknown_keys)
