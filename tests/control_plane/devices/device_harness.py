"""Device identities for device-authentication tests and the trust bench, issued for real.

`issued_identity` does what enrolment does for an already registered device, without the
token: a key made in the identity directory, a CSR, a certificate signed by the fleet CA, its
record in ``issued_certificates`` (what the control plane verifies assertions against) and
the chain installed with the pinned checks. Imported, not a conftest (as ``fleet_harness``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.provisioning.ledger import PendingIssuance, issued_values
from control_plane.provisioning.tables import issued_certificates
from provisioning.ca import CertificateAuthority
from provisioning.device_keys import DeviceIdentity


async def issued_identity(
    engine: AsyncEngine,
    ca: CertificateAuthority,
    *,
    device_id: str,
    identity_dir: Path,
    now: datetime | None = None,
) -> DeviceIdentity:
    """A key and a recorded certificate for ``device_id`` in ``identity_dir``."""
    identity = DeviceIdentity(identity_dir)
    pending = PendingIssuance()
    issued = ca.with_ledger(pending).issue_device_certificate(
        identity.certificate_request(), device_id=device_id, now=now
    )
    async with engine.begin() as conn:
        await conn.execute(insert(issued_certificates).values(**issued_values(pending.issued[0])))
    identity.install(issued.chain_pem, pinned_fingerprint=ca.fingerprint, now=now)
    return identity
