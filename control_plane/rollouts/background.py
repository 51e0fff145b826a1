"""The rollout driver as the app's supervised background task (``control_plane.app``).

Bundles are served at STOREFLEET_CP_RELEASE_BASE_URL, else the URL appliances enrol with
(``STOREFLEET_CA_PUBLIC_URL``, the one they already reach), else this control plane's address.
The tick and lease come from STOREFLEET_CP_ROLLOUT_TICK_S and _LEASE_S. Tenants named in
STOREFLEET_BALENA_FLEETS deploy through balenaCloud (:mod:`.balena_cloud`), the rest natively.
"""

from __future__ import annotations

import contextlib

from fastapi import FastAPI

from control_plane.provisioning.settings import ProvisioningSettings
from control_plane.rollouts.balena_cloud import (
    BalenaSettings,
    balena_deployers,
    load_balena_settings,
)
from control_plane.rollouts.deployers import Deployers
from control_plane.rollouts.driver import DriverSettings, RolloutDriver
from control_plane.rollouts.native import NativeDeployer
from control_plane.settings import ControlPlaneSettings, host_pattern


def bundle_base_url(app: FastAPI) -> str:
    """Where devices download bundles: the setting, else the enrolment URL, else our address."""
    served: ControlPlaneSettings = app.state.settings
    if served.release_base_url:
        return served.release_base_url
    provisioning: ProvisioningSettings | None = getattr(app.state, "provisioning_settings", None)
    if provisioning is not None:
        return provisioning.public_url
    scheme = "https" if served.tls_cert else "http"
    return f"{scheme}://{host_pattern(served.host)}:{served.port}"


async def drive_rollouts(app: FastAPI) -> None:
    """Run this instance's rollout driver until cancelled; give its leases up on the way out."""
    served: ControlPlaneSettings = app.state.settings
    settings = DriverSettings(tick_s=served.rollout_tick_s, lease_s=served.rollout_lease_s)
    balena: BalenaSettings = getattr(app.state, "balena_settings", None) or (load_balena_settings())
    native = NativeDeployer(
        engine=app.state.engine, publisher=app.state.ingest, base_url=bundle_base_url(app)
    )
    driver = RolloutDriver(
        engine=app.state.engine,
        deployers=Deployers(native=native, by_tenant=balena_deployers(balena)),
        settings=settings,
    )
    app.state.rollout_driver = driver
    try:
        await driver.run()
    finally:
        with contextlib.suppress(Exception):
            await driver.stop()
