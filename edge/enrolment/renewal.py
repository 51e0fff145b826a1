"""Renewing the appliance's certificate before it expires, with the key it already has.

The control plane accepts a renewal when the CSR's key is the key of a current certificate of
the device (the CSR's signature proves possession) and the request carries the device's own
assertion, signed with that key for that device (``edge.enrolment.device_auth``). The appliance
asks the control plane it enrolled with, trusting only the pinned root, and installs the answer with
the same pinned checks as at enrolment; the next request presents the new certificate. Call
it when `due` says so (30 days before expiry); an appliance offline for longer than that still
has weeks of validity left. The answer carries both certificates of the one key, the
register's and the agent's (`<id>.agent`); an appliance enrolled before agents had their own
(`agent_certificate_missing`) renews at once to get it.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path

import httpx

from edge.enrolment.device_auth import DeviceAuth
from edge.enrolment.errors import NotEnrolled
from edge.enrolment.first_boot import TIMEOUT, load_enrolment, rejection, request
from provisioning.ca import renewal_due
from provisioning.device_keys import DeviceIdentity, VerifiedChain


def due(identity_dir: Path, *, now: datetime | None = None) -> bool:
    """Whether the installed certificate should be renewed now."""
    certificate = DeviceIdentity(identity_dir).certificate()
    return renewal_due(certificate, now=now or datetime.now(UTC))


async def renew_certificate(
    identity_dir: Path, *, http: httpx.AsyncClient | None = None
) -> VerifiedChain:
    """Fetch and install a renewed certificate for this appliance's key."""
    enrolment = load_enrolment(identity_dir)
    if enrolment is None:
        raise NotEnrolled(str(identity_dir))
    identity = DeviceIdentity(identity_dir)
    url = f"{enrolment.control_plane_url.rstrip('/')}/api/devices/{enrolment.device_id}/renew"
    body = {"csr_pem": identity.certificate_request().decode()}
    auth = DeviceAuth(identity_dir)
    if http is not None:
        response = await request(http, "POST", url, json=body, auth=auth)
    else:
        pinned = ssl.create_default_context(cafile=identity.ca_path)
        async with httpx.AsyncClient(verify=pinned, timeout=TIMEOUT) as client:
            response = await request(client, "POST", url, json=body, auth=auth)
    if response.status_code >= 400:
        raise rejection(response)
    answer = response.json()
    agent_chain = answer.get("agent_certificate_chain_pem")
    if agent_chain:  # a control plane older than agent certificates sends none
        identity.install_agent(
            agent_chain.encode(),
            device_id=enrolment.device_id,
            pinned_fingerprint=enrolment.ca_fingerprint,
        )
    return identity.install(
        answer["certificate_chain_pem"].encode(), pinned_fingerprint=enrolment.ca_fingerprint
    )


def agent_certificate_missing(identity_dir: Path) -> bool:
    """Enrolled before agents had a certificate of their own: renew now to get one."""
    identity = DeviceIdentity(identity_dir)
    return identity.certificate_path.exists() and not identity.agent_certificate_path.exists()
