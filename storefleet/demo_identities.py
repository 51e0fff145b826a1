"""The demo's registers get device identities, so they sign their HTTPS calls like any appliance.

The demo seeds its devices straight into the registry (nobody scans an enrolment code), so this
does the rest of what enrolment does for each: a key made in the register's own directory (as an
appliance makes its own), a certificate of the demo CA for it, recorded in
``issued_certificates`` like an enrolment's (the control plane verifies device assertions
against that record), and the chain installed with the pinned checks. Each start issues a fresh
certificate for the kept key: the newest is the one the control plane accepts, so a demo
database that was removed (or a new demo CA) never leaves a register with a certificate nobody
knows. The register finds it at ``<its data directory>/identity``
(``edge.enrolment.device_auth.FIXED_IDENTITY_SUBDIR``; ``device_auth_at``).

``storefleet demo`` calls this for each register before starting it: the register's catalog
sync and the agent's log uploads sign with this identity (``device_auth_at``), and its
replicator signs each journal batch head with it (the ingest refuses unsigned batches from a
device that has a certificate).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import insert

from control_plane.provisioning.authority import FleetAuthority
from control_plane.provisioning.ledger import issued_values
from control_plane.provisioning.service import utc_now
from control_plane.provisioning.tables import issued_certificates
from edge.enrolment.device_auth import FIXED_IDENTITY_SUBDIR
from provisioning.device_keys import DeviceIdentity


def demo_authority(app: FastAPI) -> FleetAuthority:
    """The demo control plane's CA holder (the one its routes use, made now if not yet)."""
    authority: FleetAuthority | None = getattr(app.state, "provisioning", None)
    if authority is None:
        authority = FleetAuthority(
            settings=app.state.provisioning_settings, engine=app.state.engine
        )
        app.state.provisioning = authority
    return authority


async def issue_demo_identity(app: FastAPI, *, device_id: str, register_dir: Path) -> Path:
    """Key (kept) and a new recorded certificate for ``device_id``; returns the identity dir."""
    authority = demo_authority(app)
    identity = DeviceIdentity(register_dir / FIXED_IDENTITY_SUBDIR)
    issued, record = await authority.sign_device(
        identity.certificate_request(), device_id=device_id, now=utc_now()
    )
    async with authority.writing(), authority.engine.begin() as conn:
        await conn.execute(insert(issued_certificates).values(**issued_values(record)))
    identity.install(issued.chain_pem, pinned_fingerprint=await authority.fingerprint())
    return identity.directory
