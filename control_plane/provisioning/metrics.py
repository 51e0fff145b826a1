"""Prometheus metrics of enrolment and the CA: what operators alert on."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ENROLMENTS_CREATED = Counter(
    "storefleet_enrolments_created_total", "Enrolments created (including replacements)", ["kind"]
)
ENROLMENTS_REDEEMED = Counter(
    "storefleet_enrolments_redeemed_total",
    "Enrolments redeemed: first use, or the same key retrying after a lost answer",
    ["kind"],
)
REFUSALS = Counter(
    "storefleet_enrolment_refusals_total",
    "Enrolment and renewal attempts refused, by stable reason",
    ["reason"],
)
CERTIFICATES_ISSUED = Counter(
    "storefleet_certificates_issued_total", "Device certificates issued", ["purpose"]
)
CERTIFICATES_REVOKED = Counter(
    "storefleet_certificates_revoked_total", "Certificates revoked", ["reason"]
)
CRL_WRITES = Counter("storefleet_crl_writes_total", "CRL files written for the broker")
ENROL_SECONDS = Histogram(
    "storefleet_enrol_seconds",
    "Time to answer an enrolment (claim, registry, signing)",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
