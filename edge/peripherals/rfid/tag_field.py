"""The tags in front of a simulated reader: population, misses, RSSI noise, read rate.

Both reader simulators draw their inventory rounds from a :class:`TagField`, seeded, so a test
sees the same reads on every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from protocols.epc import encode_sgtin, gtin_check_digit


@dataclass(frozen=True, slots=True, kw_only=True)
class TagField:
    """What an inventory round can see."""

    epcs: tuple[bytes, ...]
    miss_rate: float = 0.0  # chance that a tag is not seen in a round
    rssi_dbm: int = -55
    rssi_noise_db: float = 3.0
    antennas: tuple[int, ...] = (1,)
    reads_per_second: float | None = None  # None: as fast as the link carries
    seed: int = 0

    def round(self, rng: random.Random) -> list[tuple[bytes, int, int]]:
        """One inventory round: (epc, antenna, rssi) for each tag seen."""
        seen = []
        for epc in self.epcs:
            if rng.random() < self.miss_rate:
                continue
            rssi = round(rng.gauss(self.rssi_dbm, self.rssi_noise_db))
            seen.append((epc, rng.choice(self.antennas), max(-120, min(-20, rssi))))
        return seen


def sgtin_population(
    counts: dict[str, int], *, company_prefix_digits: int = 7
) -> tuple[bytes, ...]:
    """SGTIN-96 EPCs: ``counts[gtin]`` tags per GTIN, serials 1…n."""
    return tuple(
        encode_sgtin(gtin=gtin, serial=str(serial), company_prefix_digits=company_prefix_digits)
        for gtin, n in counts.items()
        for serial in range(1, n + 1)
    )


def make_gtin(company_prefix: str, item: int, *, indicator: str = "0") -> str:
    """A valid GTIN-14 for test populations."""
    body = indicator + company_prefix + str(item).zfill(12 - len(company_prefix))
    return body + str(gtin_check_digit(body))
