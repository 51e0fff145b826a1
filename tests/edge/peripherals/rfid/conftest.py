"""A store's expected stock and the tag population the simulators put in front of the reader."""

from collections.abc import Mapping

import pytest

from edge.peripherals.rfid.tag_field import make_gtin, sgtin_population

GTINS = [make_gtin("0614141", item) for item in range(1, 21)]


@pytest.fixture
def on_shelf() -> dict[str, int]:
    """2,000 tagged items over 20 GTINs (100 each)."""
    return dict.fromkeys(GTINS, 100)


@pytest.fixture
def expected(on_shelf: Mapping[str, int]) -> dict[str, int]:
    """What the ledger believes: 3 GTINs off (two short on the shelf, one over)."""
    believed = dict(on_shelf)
    believed[GTINS[0]] += 5  # 5 stolen or mis-scanned
    believed[GTINS[1]] += 1
    believed[GTINS[2]] -= 2  # 2 received but not booked
    believed[make_gtin("0614141", 999)] = 4  # in the ledger, none on the shelf
    return believed


@pytest.fixture
def population(on_shelf: dict[str, int]) -> tuple[bytes, ...]:
    return sgtin_population(on_shelf)


class MemoryJournal:
    """Test double for the ledger's JournalWriter: appends to a list, returns seq."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    async def append_event(self, kind: str, body: Mapping[str, object]) -> int:
        self.events.append((kind, dict(body)))
        return len(self.events)
