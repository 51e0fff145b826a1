"""Prometheus metrics of operator authentication: what operators alert on."""

from __future__ import annotations

from prometheus_client import Counter

LOGINS = Counter(
    "storefleet_operator_logins_total",
    "Console and API logins, by outcome (ok, refused, locked_out, totp_refused, rate_limited)",
    ["outcome"],
)
REFUSALS = Counter(
    "storefleet_operator_refusals_total",
    "Requests refused by the gatekeeper or the policy, by stable reason",
    ["reason"],
)
TOKENS = Counter("storefleet_api_tokens_total", "API tokens created and revoked", ["event"])
