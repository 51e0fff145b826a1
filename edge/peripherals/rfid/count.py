"""A stock count by RFID: live totals per GTIN, compared with what the ledger says is on hand.

How it works: reads go through a :class:`ReadPipeline` (one record per EPC). The first time an
EPC is seen it is decoded (GS1 TDS) once and its GTIN's total goes up by one; repeat reads only
refresh RSSI. Tags that are not SGTINs are tallied by scheme so the report can say so. When the
person stops the count, :meth:`CountSession.variance` compares with the expected on-hand mapping,
and :meth:`CountSession.commit` appends one ``stock_count.committed`` event to the journal.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from edge.peripherals.rfid.observation import TagObservation
from edge.peripherals.rfid.pipeline import ReadPipeline
from protocols.epc import EpcError, Sgtin, decode_epc
from protocols.vocabulary import JournalKind

EVENT_KIND = JournalKind.STOCK_COUNT_COMMITTED


class JournalWriter(Protocol):
    """The ledger's append-only journal (implemented by the ledger, injected here)."""

    async def append_event(self, kind: str, body: Mapping[str, object]) -> int:
        """Append one event in the ledger's transaction; returns its journal seq."""
        ...


class CountStateError(RuntimeError):
    """The session was asked to do something its state forbids (e.g. commit twice)."""

    def __init__(self, message: str, *, session_id: str, state: str) -> None:
        super().__init__(f"count {session_id} is {state}: {message}")
        self.session_id = session_id
        self.state = state


@dataclass(frozen=True, slots=True)
class VarianceLine:
    """One GTIN: what the ledger expected, what we counted, counted minus expected."""

    gtin: str
    expected: int
    counted: int

    @property
    def variance(self) -> int:
        return self.counted - self.expected


@dataclass(frozen=True, slots=True)
class VarianceReport:
    """The result of a count, ready for the journal."""

    session_id: str
    location: str
    started_at: float
    stopped_at: float
    lines: tuple[VarianceLine, ...]
    other_tags: Mapping[str, int]  # scheme -> distinct EPCs that are not SGTINs
    reads: int

    @property
    def counted_total(self) -> int:
        return sum(line.counted for line in self.lines)

    @property
    def expected_total(self) -> int:
        return sum(line.expected for line in self.lines)

    def to_body(self) -> dict[str, object]:
        """JSON-able body: integers only for quantities, timestamps as integer milliseconds."""
        return {
            "session_id": self.session_id,
            "location": self.location,
            "started_at_ms": round(self.started_at * 1000),
            "stopped_at_ms": round(self.stopped_at * 1000),
            "reads": self.reads,
            "lines": [
                {
                    "gtin": line.gtin,
                    "expected": line.expected,
                    "counted": line.counted,
                    "variance": line.variance,
                }
                for line in self.lines
            ],
            "other_tags": dict(sorted(self.other_tags.items())),
            "expected_total": self.expected_total,
            "counted_total": self.counted_total,
        }


State = Literal["new", "counting", "stopped", "committed"]


class CountSession:
    """Feed reads with :meth:`add` (safe to pass as a reader client's ``on_read``)."""

    def __init__(
        self,
        *,
        session_id: str,
        expected: Mapping[str, int],
        location: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.session_id = session_id
        self.location = location
        self._expected = dict(expected)
        self._clock = clock
        self._counted: Counter[str] = Counter()
        self._other: Counter[str] = Counter()
        self._pipeline = ReadPipeline(on_new=self._first_sighting)
        self.state: State = "new"
        self._started_at = 0.0
        self._stopped_at = 0.0

    def start(self) -> None:
        """Begin taking reads."""
        if self.state != "new":
            raise CountStateError(
                "cannot start again", session_id=self.session_id, state=self.state
            )
        self.state = "counting"
        self._started_at = self._clock()

    def stop(self) -> None:
        """Stop taking reads; the totals freeze."""
        if self.state != "counting":
            raise CountStateError("not counting", session_id=self.session_id, state=self.state)
        self.state = "stopped"
        self._stopped_at = self._clock()

    def add(self, obs: TagObservation) -> None:
        """One read; ignored unless the session is counting."""
        if self.state == "counting":
            self._pipeline.add(obs)

    @property
    def distinct_tags(self) -> int:
        """Distinct EPCs seen so far."""
        return len(self._pipeline)

    def totals(self) -> dict[str, int]:
        """Live count per GTIN."""
        return dict(self._counted)

    def variance(self) -> VarianceReport:
        """Counted vs expected for every GTIN in either."""
        gtins = sorted(set(self._expected) | set(self._counted))
        lines = tuple(
            VarianceLine(gtin=g, expected=self._expected.get(g, 0), counted=self._counted.get(g, 0))
            for g in gtins
        )
        return VarianceReport(
            session_id=self.session_id,
            location=self.location,
            started_at=self._started_at,
            stopped_at=self._stopped_at or self._clock(),
            lines=lines,
            other_tags=dict(self._other),
            reads=self._pipeline.reads,
        )

    async def commit(self, journal: JournalWriter) -> int:
        """Write the variance to the journal once; returns the journal seq."""
        if self.state != "stopped":
            raise CountStateError(
                "stop before commit", session_id=self.session_id, state=self.state
            )
        seq = await journal.append_event(EVENT_KIND, self.variance().to_body())
        self.state = "committed"
        return seq

    def _first_sighting(self, epc: bytes) -> None:
        try:
            decoded = decode_epc(epc)
        except EpcError:
            self._other["malformed"] += 1
            return
        if isinstance(decoded, Sgtin):
            self._counted[decoded.gtin] += 1
        else:
            self._other[decoded.scheme] += 1
