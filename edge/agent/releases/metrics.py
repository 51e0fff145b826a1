"""Prometheus counters of releases on the appliance."""

from __future__ import annotations

from prometheus_client import Counter

OUTCOMES = Counter(
    "storefleet_agent_release_outcomes",
    "Releases ended on this appliance, by final state (succeeded, failed, reverted, timed_out)",
    ["state"],
)
REFUSALS = Counter(
    "storefleet_agent_release_refusals",
    "Releases refused or failed, by reason (bad_signature, unknown_key, disk_write_failed, ...)",
    ["reason"],
)
DOWNLOAD_RESUMES = Counter(
    "storefleet_agent_release_download_resumes",
    "Bundle downloads resumed with a Range request after an interruption",
)
LEASE_OVERRIDDEN = Counter(
    "storefleet_agent_release_lease_overridden",
    "Switches that went ahead past an update lease (expired, or held longer than allowed)",
    ["why"],
)
