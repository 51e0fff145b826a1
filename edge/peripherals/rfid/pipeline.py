"""De-duplicate tag reads per EPC, keeping the strongest sighting.

A reader reports the same tag many times a second. A count only needs, per EPC, whether it was
seen, its best RSSI and the antenna that saw it best (which shelf it is on). Memory is one small
record per distinct EPC, so a million reads of a fixed population keep memory flat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from edge.peripherals.rfid.observation import TagObservation


class _Best:
    __slots__ = ("antenna", "reads", "rssi")

    def __init__(self, rssi: int, antenna: int) -> None:
        self.rssi = rssi
        self.antenna = antenna
        self.reads = 1


@dataclass(frozen=True, slots=True)
class TagSighting:
    """The best sighting of one EPC in this count."""

    epc: bytes
    rssi_dbm: int
    antenna: int
    reads: int


class ReadPipeline:
    """Feed with :meth:`add`; ``on_new`` is called once per distinct EPC."""

    def __init__(self, *, on_new: Callable[[bytes], None] | None = None) -> None:
        self._tags: dict[bytes, _Best] = {}
        self._on_new = on_new
        self.reads = 0

    def add(self, obs: TagObservation) -> None:
        """Take one read."""
        self.reads += 1
        best = self._tags.get(obs.epc)
        if best is None:
            self._tags[obs.epc] = _Best(obs.rssi_dbm, obs.antenna)
            if self._on_new is not None:
                self._on_new(obs.epc)
            return
        best.reads += 1
        if obs.rssi_dbm > best.rssi:
            best.rssi = obs.rssi_dbm
            best.antenna = obs.antenna

    def __len__(self) -> int:
        return len(self._tags)

    def __iter__(self) -> Iterator[TagSighting]:
        for epc, best in self._tags.items():
            yield TagSighting(epc=epc, rssi_dbm=best.rssi, antenna=best.antenna, reads=best.reads)

    def get(self, epc: bytes) -> TagSighting | None:
        """The sighting of one EPC, if seen."""
        best = self._tags.get(epc)
        if best is None:
            return None
        return TagSighting(epc=epc, rssi_dbm=best.rssi, antenna=best.antenna, reads=best.reads)
