"""The CA settings refuse the public demo passphrase outside the demo, and say what to set."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from control_plane.provisioning.settings import DEMO_PASSPHRASE, ProvisioningSettings


def test_the_default_passphrase_is_refused_outside_the_demo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STOREFLEET_CA_PASSPHRASE", raising=False)
    monkeypatch.delenv("STOREFLEET_CA_DEMO", raising=False)

    with pytest.raises(ValidationError, match="set a long random STOREFLEET_CA_PASSPHRASE"):
        ProvisioningSettings()


def test_the_demo_may_use_the_default_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREFLEET_CA_DEMO", "1")

    assert ProvisioningSettings().passphrase_bytes == DEMO_PASSPHRASE.encode()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param("STOREFLEET_CA_PASSPHRASE", "short", "at least 16 bytes", id="short"),
        pytest.param("STOREFLEET_CA_DEVICE_BROKER_URL", "http://x", "mqtt://", id="broker-url"),
    ],
)
def test_unusable_values_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv("STOREFLEET_CA_PASSPHRASE", "a long enough passphrase here")
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError, match=message):
        ProvisioningSettings()
