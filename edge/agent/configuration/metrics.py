"""Prometheus counters of the agent's configuration: applied, refused, ignored, waiting."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

APPLIED = Counter(
    "storefleet_agent_config_applied",
    "Configuration versions applied, by how (live: the register re-read it; restart)",
    ["device_id", "how"],
)
REFUSED = Counter(
    "storefleet_agent_config_refused",
    "Configuration documents refused on the device, by the top-level key at fault",
    ["device_id", "key"],
)
IGNORED = Counter(
    "storefleet_agent_config_ignored",
    "Configuration messages ignored: not newer than the applied or waiting version",
    ["device_id"],
)
WAITING = Gauge(
    "storefleet_agent_config_waiting",
    "1 while a configuration that needs a register restart waits for the open sale to close",
    ["device_id"],
)
