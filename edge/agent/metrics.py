"""Prometheus counters of the fleet agent, labelled by device (a demo runs many in one process)."""

from __future__ import annotations

from prometheus_client import Counter

COMMANDS = Counter(
    "storefleet_agent_commands",
    "Remote commands handled, by command name and outcome (ok, failed, duplicate)",
    ["device_id", "command", "outcome"],
)
COMMANDS_REJECTED = Counter(
    "storefleet_agent_commands_rejected",
    "Command messages refused before running: malformed, unknown command, invalid arguments",
    ["device_id", "reason"],
)
STATE_PUBLISHED = Counter(
    "storefleet_agent_state_published",
    "Retained state messages published, by why (change, interval, connect)",
    ["device_id", "why"],
)
CONNECTS = Counter(
    "storefleet_agent_broker_connects",
    "Agent broker connection attempts by outcome",
    ["device_id", "outcome"],
)
