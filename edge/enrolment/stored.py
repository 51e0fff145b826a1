"""The enrolment an appliance finished, as stored on disk: read without the enrolment machinery.

Why a module of its own: the fleet agent reads who it is at every start and whenever it looks
for a first-boot enrolment, and must stay small (its memory goal is 40 MB). Reading
``enrolment.json`` and making the mTLS context takes ``json`` and ``ssl`` only; enrolling and
renewing take ``cryptography`` and ``httpx`` (~15 MB), which :mod:`edge.enrolment.first_boot`
imports and the agent loads only when it renews.

The file names are those of :class:`provisioning.device_keys.DeviceIdentity` (a test holds them
equal): the key, the certificate chain and the pinned root, beside ``enrolment.json``.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.enrolment.errors import NotEnrolled
from protocols.broker_url import BrokerAddress, parse_broker_url

ENROLMENT_FILE = "enrolment.json"
KEY_FILE = "device.key.pem"
CERT_FILE = "device.crt.pem"
AGENT_CERT_FILE = "agent.crt.pem"
CA_FILE = "ca.crt.pem"


@dataclass(frozen=True, slots=True)
class EnrolmentResult:
    """Who this appliance is and where it connects, as the control plane said at enrolment."""

    device_id: str
    broker_url: str
    control_plane_url: str
    ca_fingerprint: str
    config: dict[str, Any] = field(default_factory=dict)
    resumed: bool = False  # already enrolled: read from disk, nothing was sent

    @property
    def broker(self) -> BrokerAddress:
        """The broker address to replicate to (mqtts://)."""
        return parse_broker_url(self.broker_url)


def enrolled(identity_dir: Path) -> bool:
    """The key and the certificate are there (the certificate is written last)."""
    return (identity_dir / CERT_FILE).exists() and (identity_dir / KEY_FILE).exists()


def load_enrolment(identity_dir: Path) -> EnrolmentResult | None:
    """The stored enrolment if this appliance finished one (certificate and file), else None."""
    path = identity_dir / ENROLMENT_FILE
    if not enrolled(identity_dir) or not path.exists():
        return None
    fields = json.loads(path.read_text())
    fields.pop("resumed", None)
    return EnrolmentResult(**fields, resumed=True)


def pinned_context(identity_dir: Path) -> ssl.SSLContext:
    """TLS that trusts only the pinned root (HTTPS to the control plane)."""
    return ssl.create_default_context(cafile=identity_dir / CA_FILE)


def has_agent_certificate(identity_dir: Path) -> bool:
    """Whether the fleet agent's own certificate (CN `<id>.agent`) is installed."""
    return (identity_dir / AGENT_CERT_FILE).exists()


def agent_tls_context(identity_dir: Path) -> ssl.SSLContext:
    """mTLS for the agent's broker session: its own certificate (same key), the pinned root.

    The register's session presents `device.crt.pem` (CN = device id) and the agent's this one
    (CN `<id>.agent`): the broker binds each client id to its certificate's CN, so the two
    sessions must not share a certificate, and each CN is granted only its own channels.
    """
    if not enrolled(identity_dir) or not has_agent_certificate(identity_dir):
        raise NotEnrolled(str(identity_dir))
    context = pinned_context(identity_dir)
    context.load_cert_chain(identity_dir / AGENT_CERT_FILE, identity_dir / KEY_FILE)
    return context


def mqtt_tls_context(identity_dir: Path) -> ssl.SSLContext:
    """mTLS for the broker: present this appliance's certificate, trust only the pinned root."""
    if not enrolled(identity_dir):
        raise NotEnrolled(str(identity_dir))
    context = pinned_context(identity_dir)
    context.load_cert_chain(identity_dir / CERT_FILE, identity_dir / KEY_FILE)
    return context
