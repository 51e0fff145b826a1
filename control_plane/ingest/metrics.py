"""Ingest metrics: every drop is counted by reason so a bad publisher shows up on a dashboard."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECORDS_STORED = Counter("storefleet_ingest_records_stored", "Journal records stored")
DUPLICATES = Counter("storefleet_ingest_duplicates", "Journal records received again and ignored")
GAPS = Counter("storefleet_ingest_gaps", "Batches that started past the high-water mark")
CHAIN_BREAKS = Counter("storefleet_ingest_chain_breaks", "Records refused for a bad hash link")
RECORDS_REFUSED = Counter(
    "storefleet_ingest_records_refused",
    "Records that continue the chain but cannot be stored (the device is flagged), by reason:"
    " invalid (not the contract's body, e.g. a sale without a total), database (refused by it)",
    ["reason"],
)
DROPPED = Counter(
    "storefleet_ingest_messages_dropped", "Inbound MQTT messages dropped, by reason", ["reason"]
)
BATCH_SECONDS = Histogram(
    "storefleet_ingest_batch_seconds",
    "Time to store one batch and publish its ack",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
LAG = Histogram(
    "storefleet_ingest_lag_seconds",
    "From commit on the appliance to durable in the cloud, per record",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600, 86400),
)
