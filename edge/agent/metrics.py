"""Prometheus counters of the fleet agent, labelled by device (a demo runs many in one process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
EVENTS_PUBLISHED = Counter(
    "storefleet_agent_events_published",
    "Events published on the device's events topic, by kind",
    ["device_id", "kind"],
)
EVENTS_DROPPED = Counter(
    "storefleet_agent_events_dropped",
    "Events dropped unpublished because the outbox was full (offline for long)",
    ["device_id"],
)
LOCAL_LINES_DROPPED = Counter(
    "storefleet_agent_local_lines_dropped",
    "Lines on the agent-register socket that were not a message of the contract",
    ["side"],
)
REGISTER_STARTS = Counter(
    "storefleet_agent_register_starts",
    "Times the agent started the register, by why (boot, crashed, hung, restart command)",
    ["why"],
)
REGISTER_EXITS = Counter(
    "storefleet_agent_register_exits",
    "Times the register ended, by how (exit code, signal, killed as hung)",
    ["how"],
)
CRASH_LOOP = Gauge(
    "storefleet_agent_register_crash_loop",
    "1 while the register is in a crash loop (N failed starts in a row)",
)
LOG_UPLOADS = Counter(
    "storefleet_agent_log_uploads",
    "Uploads of the register's logs to the control plane, by outcome",
    ["outcome"],
)
METRICS_REQUESTS = Counter(
    "storefleet_agent_metrics_requests",
    "Requests to the agent's own /metrics endpoint, by outcome (ok, not_found, bad_method,"
    " malformed, dropped)",
    ["outcome"],
)
