"""Shared fixtures for the provisioning tests: a CA, device identities, fixed clocks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from provisioning.ca import CertificateAuthority

PASSPHRASE = b"correct horse battery staple"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    """A fixed clock, so expiry and validity assertions are exact."""
    return NOW


@pytest.fixture
def passphrase() -> bytes:
    """The passphrase the test CAs are encrypted with."""
    return PASSPHRASE


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    """A fresh CA made at NOW, in its own directory."""
    return CertificateAuthority.create(tmp_path / "ca", passphrase=PASSPHRASE, now=NOW)


@pytest.fixture
def other_ca(tmp_path: Path) -> CertificateAuthority:
    """A second, unrelated CA: what an attacker or a misconfigured fleet would use."""
    return CertificateAuthority.create(tmp_path / "other-ca", passphrase=PASSPHRASE, now=NOW)
