"""First-boot enrolment: pin the CA, send the CSR, install the identity, remember the broker.

How it works
1. Read the QR text (`parse_qr`) or a typed code (`normalise_fallback_code`; the control-plane
   URL and the CA fingerprint then come from `EnrolmentSettings`).
2. Fetch `GET /api/ca.pem` and compare its sha256 with the pinned fingerprint. Nothing else is
   sent before this passes: a wrong or intercepted control plane never sees the CSR or token.
   The bootstrap fetch does not verify TLS on purpose; the pin is what authenticates the root.
   From then on the pinned root is the only TLS trust for `https://` control planes.
3. Make (or reuse) the key, POST token + CSR to `/api/enrol`.
4. `DeviceIdentity.install_agent` and `install` check the agent's and the register's chains
   (one key, CN `<id>.agent` and `<id>`) against the pin and this key, and write them;
   then `enrolment.json` (device id, broker URL, first config) is written atomically beside it.
`progress` (optional) hears each step as it starts, for the first-boot screen.
A power cut at any point is resumed by running the same enrolment again: the key is kept, and
the control plane answers the same key with the same device id (a retry, not a replay). A
complete enrolment (certificate and `enrolment.json`) is returned as is, without the network.
"""

from __future__ import annotations

import contextlib
import enum
import json
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509

from edge.enrolment.errors import ControlPlaneUnreachable, EnrolmentRejected, NotEnrolled
from edge.enrolment.settings import EnrolmentSettings
from edge.enrolment.stored import (
    ENROLMENT_FILE,
    EnrolmentResult,
    load_enrolment,
    mqtt_tls_context,
)
from protocols.broker_url import BrokerAddress, parse_broker_url
from provisioning.device_keys import DeviceIdentity
from provisioning.enrolment import parse_qr
from provisioning.errors import CaFingerprintMismatch, DeviceIdentityError
from provisioning.fallback_code import normalise_fallback_code
from provisioning.keys import PRIVATE_FILE_MODE, certificate_fingerprint, write_atomic

TIMEOUT = httpx.Timeout(15.0)

#: What the enrolment stored is read by :mod:`edge.enrolment.stored` (the agent reads it there,
#: without httpx and cryptography); re-exported here for the code that enrols.
__all__ = [
    "ENROLMENT_FILE",
    "TIMEOUT",
    "EnrolmentResult",
    "EnrolmentStep",
    "Progress",
    "ReplicationIdentity",
    "enrol_from_qr",
    "enrol_with_code",
    "fetch_pinned_root",
    "load_enrolment",
    "mqtt_tls_context",
    "rejection",
    "replication_identity",
    "request",
]


class EnrolmentStep(enum.Enum):
    """What enrolment is doing now, for a screen that shows the field tech it is moving."""

    PINNING = "pinning"  # fetching the control plane's root and comparing it with the pin
    REQUESTING = "requesting"  # the pin matched: token and CSR sent, waiting for the certificate


Progress = Callable[[EnrolmentStep], None]


@dataclass(frozen=True, slots=True)
class ReplicationIdentity:
    """What the replicator needs from enrolment: who this appliance is, where, and mTLS."""

    device_id: str
    broker: BrokerAddress
    tls_context: ssl.SSLContext


def replication_identity(identity_dir: Path) -> ReplicationIdentity:
    """The enrolled identity as `Replicator(device_id=…, broker=…, tls_context=…)` takes it."""
    enrolment = load_enrolment(identity_dir)
    if enrolment is None:
        raise NotEnrolled(str(identity_dir))
    return ReplicationIdentity(
        device_id=enrolment.device_id,
        broker=enrolment.broker,
        tls_context=mqtt_tls_context(identity_dir),
    )


async def enrol_from_qr(
    text: str,
    *,
    identity_dir: Path,
    http: httpx.AsyncClient | None = None,
    progress: Progress | None = None,
) -> EnrolmentResult:
    """Enrol with a scanned QR code; `http` (optional) is used for every request, as given."""
    payload = parse_qr(text)
    return await _enrol(
        control_plane_url=payload.control_plane_url,
        fingerprint=payload.ca_fingerprint,
        secret={"token": payload.token},
        identity_dir=identity_dir,
        http=http,
        progress=progress,
    )


async def enrol_with_code(
    code: str,
    *,
    settings: EnrolmentSettings,
    identity_dir: Path | None = None,
    http: httpx.AsyncClient | None = None,
    progress: Progress | None = None,
) -> EnrolmentResult:
    """Enrol with the typed fallback code; the URL and pin come from the image's settings."""
    canonical = normalise_fallback_code(code)  # a typo is caught here, before any request
    return await _enrol(
        control_plane_url=settings.control_plane_url,
        fingerprint=settings.ca_fingerprint,
        secret={"fallback_code": canonical},
        identity_dir=identity_dir or settings.identity_dir,
        http=http,
        progress=progress,
    )


@contextlib.asynccontextmanager
async def _client(
    given: httpx.AsyncClient | None, *, verify: ssl.SSLContext | bool
) -> AsyncIterator[httpx.AsyncClient]:
    if given is not None:
        yield given
        return
    async with httpx.AsyncClient(verify=verify, timeout=TIMEOUT) as client:
        yield client


async def request(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """One call to the control plane; no answer or a 5xx is ControlPlaneUnreachable (retry)."""
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as err:
        raise ControlPlaneUnreachable(url, type(err).__name__ + f": {err}") from err
    if response.status_code >= 500:
        raise ControlPlaneUnreachable(url, f"HTTP {response.status_code}")
    return response


def rejection(response: httpx.Response) -> EnrolmentRejected:
    """The control plane's refusal (4xx) as the exception the first-boot screen shows."""
    try:
        answer = response.json()
    except ValueError:
        answer = response.text
    problem = answer if isinstance(answer, dict) else {}
    if isinstance(problem.get("detail"), dict):  # a control plane from before problem details
        problem = {**problem["detail"], "detail": problem["detail"].get("message", "")}
    return EnrolmentRejected(
        status=response.status_code,
        reason=str(problem.get("reason", "refused")),
        advice=str(problem.get("advice", "")),
        message=str(problem.get("detail") or answer),
    )


async def fetch_pinned_root(
    client: httpx.AsyncClient, *, control_plane_url: str, fingerprint: str
) -> bytes:
    """The control plane's root certificate, only if its sha256 is the pinned fingerprint."""
    url = f"{control_plane_url.rstrip('/')}/api/ca.pem"
    response = await request(client, "GET", url)
    pinned = fingerprint.lower().replace(":", "")
    try:
        root = x509.load_pem_x509_certificate(response.content)
    except ValueError:
        raise CaFingerprintMismatch(expected=pinned, actual=None) from None
    actual = certificate_fingerprint(root)
    if actual != pinned:
        raise CaFingerprintMismatch(expected=pinned, actual=actual)
    return response.content


async def _enrol(
    *,
    control_plane_url: str,
    fingerprint: str,
    secret: dict[str, str],
    identity_dir: Path,
    http: httpx.AsyncClient | None,
    progress: Progress | None,
) -> EnrolmentResult:
    done = load_enrolment(identity_dir)
    if done is not None:
        return done
    report = progress or (lambda _step: None)
    base = control_plane_url.rstrip("/")
    report(EnrolmentStep.PINNING)
    # Bootstrap: authenticity of the root comes from the pin, not from TLS (nothing trusted yet).
    async with _client(http, verify=False) as bootstrap:
        root_pem = await fetch_pinned_root(
            bootstrap, control_plane_url=control_plane_url, fingerprint=fingerprint
        )
    report(EnrolmentStep.REQUESTING)
    identity = DeviceIdentity(identity_dir)
    csr_pem = identity.certificate_request()  # the same key again if a first try was cut short
    pinned_tls = ssl.create_default_context(cadata=root_pem.decode())
    async with _client(http, verify=pinned_tls) as client:
        response = await request(
            client, "POST", f"{base}/api/enrol", json={**secret, "csr_pem": csr_pem.decode()}
        )
    if response.status_code >= 400:
        raise rejection(response)
    answer = response.json()
    agent_chain = answer.get("agent_certificate_chain_pem")
    if agent_chain:  # before the device certificate, whose presence means "enrolled"
        identity.install_agent(
            agent_chain.encode(), device_id=answer["device_id"], pinned_fingerprint=fingerprint
        )
    verified = identity.install(
        answer["certificate_chain_pem"].encode(), pinned_fingerprint=fingerprint
    )
    if verified.device_id != answer["device_id"]:
        msg = (
            f"the certificate names device {verified.device_id!r} but the answer says "
            f"{answer['device_id']!r}; retry enrolment"
        )
        raise DeviceIdentityError(msg)
    result = EnrolmentResult(
        device_id=verified.device_id,
        broker_url=parse_broker_url(answer["broker_url"]).url,
        control_plane_url=control_plane_url,
        ca_fingerprint=fingerprint.lower().replace(":", ""),
        config=dict(answer.get("config") or {}),
    )
    document = json.dumps(asdict(result), indent=1, sort_keys=True).encode()
    write_atomic(identity_dir / ENROLMENT_FILE, document, mode=PRIVATE_FILE_MODE)
    return replace(result, resumed=False)
