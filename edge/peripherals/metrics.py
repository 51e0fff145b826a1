"""Prometheus counters shared by every peripheral service (one registry, labelled by device)."""

from __future__ import annotations

from prometheus_client import Counter

DEVICE_EVENTS = Counter(
    "storefleet_peripheral_events",
    "Things that happened to a peripheral: garbled frames, disconnects, retries, reconnects.",
    ["device", "event"],
)
RFID_READS = Counter(
    "storefleet_rfid_reads",
    "Tag reads received from an RFID reader, before de-duplication.",
    ["device"],
)
PRINT_JOBS = Counter(
    "storefleet_print_jobs",
    "Print jobs by outcome (printed, retried).",
    ["device", "outcome"],
)
