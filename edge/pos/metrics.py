"""The register's own counters: what cashiers were refused, by the code the screen shows."""

from __future__ import annotations

from prometheus_client import Counter

REFUSALS = Counter(
    "storefleet_register_refusals_total",
    "Cashier commands the register refused (unknown barcode, tender short, bad input …)",
    ["code"],
)
