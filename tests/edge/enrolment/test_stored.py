"""The stored enrolment read by the agent names the same files the enrolment writes."""

from __future__ import annotations

from edge.enrolment import stored
from provisioning import device_keys


def test_file_names_are_the_identity_s() -> None:
    assert (stored.KEY_FILE, stored.CERT_FILE, stored.AGENT_CERT_FILE, stored.CA_FILE) == (
        device_keys.KEY_FILE,
        device_keys.CERT_FILE,
        device_keys.AGENT_CERT_FILE,
        device_keys.CA_FILE,
    )
