"""One health model for every peripheral, so the kiosk, the agent and the cloud read them alike.

A service owns one :class:`DeviceHealth` per device and updates it as things happen; it never
raises for a device problem, it records it here (and in the Prometheus counters) and carries on.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from dataclasses import dataclass, field

from edge.peripherals.metrics import DEVICE_EVENTS

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DeviceHealth:
    """What the store needs to know about one device right now."""

    device: str
    kind: str  # "printer", "scanner", "rfid"
    connected: bool = False
    error: str | None = None
    last_seen: float | None = None  # wall clock of the last byte or answer from the device
    detail: dict[str, str] = field(default_factory=dict)  # e.g. {"paper": "near_end"}
    counters: Tally[str] = field(default_factory=Tally)

    def seen(self) -> None:
        """The device just spoke: it is there and working."""
        self.connected = True
        self.error = None
        self.last_seen = time.time()

    def failed(self, error: str, *, connected: bool, hint: str) -> None:
        """Record a problem and log what a person should do about it."""
        if error != self.error:
            reason = error.removeprefix(f"{self.device}: ")
            log.warning("%s %s: %s — %s", self.kind, self.device, reason, hint)
        self.connected = connected
        self.error = error

    def count(self, event: str, n: int = 1) -> None:
        """Count an event here and in Prometheus."""
        self.counters[event] += n
        DEVICE_EVENTS.labels(device=self.device, event=event).inc(n)

    def snapshot(self) -> dict[str, object]:
        """JSON-able view for the ``state`` topic and the kiosk."""
        return {
            "device": self.device,
            "kind": self.kind,
            "connected": self.connected,
            "error": self.error,
            "last_seen": self.last_seen,
            "detail": dict(self.detail),
            "counters": dict(self.counters),
        }
