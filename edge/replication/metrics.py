"""Replication metrics of the appliance, labelled by device (a demo runs many in one process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BACKLOG = Gauge(
    "storefleet_edge_replication_backlog",
    "Journal records committed on the appliance and not yet acknowledged by the cloud",
    ["device_id"],
)
LAG = Histogram(
    "storefleet_edge_replication_lag_seconds",
    "From commit on the appliance to the cloud's acknowledgement, per record",
    ["device_id"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 3600),
)
SENT = Counter(
    "storefleet_edge_journal_records_sent", "Records published (resends included)", ["device_id"]
)
RESENDS = Counter(
    "storefleet_edge_journal_resends",
    "Times the sender went back to an earlier seq",
    ["device_id", "why"],
)
CONNECTS = Counter(
    "storefleet_edge_broker_connects",
    "Broker connection attempts by outcome",
    ["device_id", "outcome"],
)
DROPPED = Counter(
    "storefleet_edge_messages_dropped",
    "Inbound messages dropped as unusable: malformed, or an ack this ledger cannot match",
    ["device_id", "reason"],
)
REFUSED = Gauge(
    "storefleet_edge_replication_refused",
    "1 while the cloud refuses this device's journal (a broken chain, a record it cannot store)",
    ["device_id"],
)
REFUSALS = Counter(
    "storefleet_edge_replication_refusals",
    "Acks that carried the cloud's refusal of a record",
    ["device_id"],
)
