"""The control plane's own MQTT certificate: kept while good, reissued when the CA changes."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from control_plane.provisioning.mqtt_identity import CERT_FILE, ensure_control_plane_identity
from provisioning.ca import CONTROL_PLANE_COMMON_NAME
from provisioning.device_keys import common_name
from tests.control_plane.provisioning.fleet_harness import make_ca


def _certificate(directory: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((directory / CERT_FILE).read_bytes())


def test_a_good_certificate_is_kept_across_restarts(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    ensure_control_plane_identity(ca, tmp_path / "identity")
    first = _certificate(tmp_path / "identity")

    ensure_control_plane_identity(ca, tmp_path / "identity")

    assert _certificate(tmp_path / "identity") == first
    assert common_name(first) == CONTROL_PLANE_COMMON_NAME


def test_a_certificate_from_another_ca_is_replaced(tmp_path: Path) -> None:
    old_ca, new_ca = make_ca(tmp_path / "old"), make_ca(tmp_path / "new")
    ensure_control_plane_identity(old_ca, tmp_path / "identity")

    ensure_control_plane_identity(new_ca, tmp_path / "identity")

    _certificate(tmp_path / "identity").verify_directly_issued_by(new_ca.issuing_certificate)
