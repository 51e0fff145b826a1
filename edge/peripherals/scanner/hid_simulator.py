"""Simulated keyboard-wedge scanners: the evdev events a real one produces, on a simulated bus.

:func:`keystrokes` turns barcode text into the event stream a USB HID scanner emits, in evtest's
shape: for every key ``EV_MSC/MSC_SCAN``, ``EV_KEY`` press, ``EV_SYN``, then the same for the
release; Shift around shifted characters; GS as an Alt code or a configured key.
:class:`SimulatedInputBus` is a :class:`DeviceSource` whose devices can be plugged, typed on and
unplugged (their stream then fails with ENODEV, as evdev's does).
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from typing import Literal

from evdev import InputEvent, ecodes

from edge.peripherals.scanner.hid import InputDeviceInfo
from edge.peripherals.scanner.keymap import LAYOUTS
from edge.peripherals.scanner.scan import GS

_HID_USAGE_BASE = 0x70000  # MSC_SCAN values are HID usages on the keyboard page


def _key(code: int, t: list[int]) -> list[InputEvent]:
    out = []
    for value in (1, 0):
        t[0] += 1000
        sec, usec = divmod(t[0], 1_000_000)
        out += [
            InputEvent(sec, usec, ecodes.EV_MSC, ecodes.MSC_SCAN, _HID_USAGE_BASE + code),
            InputEvent(sec, usec, ecodes.EV_KEY, code, value),
            InputEvent(sec, usec, ecodes.EV_SYN, ecodes.SYN_REPORT, 0),
        ]
    return out


def _hold(code: int, value: int, t: list[int]) -> list[InputEvent]:
    t[0] += 1000
    sec, usec = divmod(t[0], 1_000_000)
    return [
        InputEvent(sec, usec, ecodes.EV_KEY, code, value),
        InputEvent(sec, usec, ecodes.EV_SYN, ecodes.SYN_REPORT, 0),
    ]


def keystrokes(
    text: str,
    *,
    layout: str = "us",
    terminator: str = "KEY_ENTER",
    gs: Literal["alt", "key"] = "alt",
    gs_key: str = "KEY_F8",
    start_us: int = 1_700_000_000_000_000,
) -> list[InputEvent]:
    """The events a scanner configured for ``layout`` sends for ``text``."""
    reverse: dict[str, tuple[int, bool]] = {}
    for key, (plain, upper) in sorted(LAYOUTS[layout].items()):
        reverse.setdefault(upper, (key, True))
        reverse[plain] = (key, False)  # unshifted wins: digits come from the top row
    t = [start_us]
    events: list[InputEvent] = []
    for char in text:
        if char == GS and gs == "alt":
            events += _hold(ecodes.KEY_LEFTALT, 1, t)
            for digit in "0029":
                events += _key(ecodes.ecodes[f"KEY_KP{digit}"], t)
            events += _hold(ecodes.KEY_LEFTALT, 0, t)
            continue
        if char == GS:
            events += _key(ecodes.ecodes[gs_key], t)
            continue
        code, with_shift = reverse[char]
        if with_shift:
            events += _hold(ecodes.KEY_LEFTSHIFT, 1, t)
        events += _key(code, t)
        if with_shift:
            events += _hold(ecodes.KEY_LEFTSHIFT, 0, t)
    return events + _key(ecodes.ecodes[terminator], t)


class _SimulatedDevice:
    def __init__(self, info: InputDeviceInfo) -> None:
        self.info = info
        self.queue: asyncio.Queue[InputEvent | None] = asyncio.Queue()
        self.grabbed = False

    def grab(self) -> None:
        if self.grabbed:
            raise OSError(errno.EBUSY, "Device or resource busy")
        self.grabbed = True

    def close(self) -> None:
        self.grabbed = False

    async def events(self) -> AsyncIterator[InputEvent]:
        while (event := await self.queue.get()) is not None:
            yield event
        raise OSError(errno.ENODEV, "No such device")


class SimulatedInputBus:
    """A :class:`DeviceSource` for tests and demos."""

    def __init__(self) -> None:
        self._devices: dict[str, _SimulatedDevice] = {}

    def plug(self, path: str, name: str) -> None:
        """A scanner appears at ``path``."""
        self._devices[path] = _SimulatedDevice(InputDeviceInfo(path=path, name=name))

    def unplug(self, path: str) -> None:
        """The scanner is pulled: its open stream fails, it is no longer listed."""
        self._devices.pop(path).queue.put_nowait(None)

    def send(self, path: str, events: list[InputEvent]) -> None:
        """The scanner emits these events."""
        for event in events:
            self._devices[path].queue.put_nowait(event)

    def grabbed(self, path: str) -> bool:
        """Whether a reader holds the device exclusively."""
        return self._devices[path].grabbed

    def list_devices(self) -> list[InputDeviceInfo]:
        return [d.info for d in self._devices.values()]

    def open(self, path: str) -> _SimulatedDevice:
        try:
            return self._devices[path]
        except KeyError as err:
            raise OSError(errno.ENOENT, f"No such file or directory: {path}") from err
