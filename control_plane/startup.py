"""Checks ``storefleet serve`` makes before anything starts, each refusal naming what to set.

Settings that parse can still not work: a database that does not answer, a CA that an mTLS
broker needs but whose passphrase is not set. Found here, they stop the start with one message
(:class:`~control_plane.settings.SettingsRefused`) instead of a traceback from the lifespan or a
503 at the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from control_plane.db.engine import DatabaseUnreachable, check_database
from control_plane.provisioning.settings import ProvisioningSettings
from control_plane.settings import ControlPlaneSettings, SettingsRefused, describe

#: A database that has not answered in this long at start is refused rather than waited for.
DATABASE_TIMEOUT_S = 5.0
CA_PREFIX = "STOREFLEET_CA_"


@dataclass(frozen=True, slots=True)
class Provisioning:
    """The CA settings if provisioning is configured; else why enrolment is off."""

    settings: ProvisioningSettings | None
    off_because: str | None = None


def provisioning_at_start(
    settings: ControlPlaneSettings, environ: Mapping[str, str] | None = None
) -> Provisioning:
    """The CA settings, validated now; or enrolment off (and why) when provisioning is not meant.

    Provisioning is meant when the broker is mqtts:// (the ingest presents a certificate the CA
    issues) or any ``STOREFLEET_CA_*`` variable is set; then a bad value is refused.
    """
    environ = os.environ if environ is None else environ
    try:
        return Provisioning(ProvisioningSettings())
    except ValidationError as err:
        problems = describe(err, ProvisioningSettings)
        given = sorted(name for name in environ if name.startswith(CA_PREFIX))
        if settings.broker.tls:
            raise SettingsRefused(
                f"{problems} (STOREFLEET_CP_BROKER_URL is mqtts://: the control plane's own "
                "broker certificate comes from the fleet CA)"
            ) from err
        if given:
            raise SettingsRefused(
                f"{problems} (provisioning is set up by {', '.join(given)})"
            ) from err
        return Provisioning(None, off_because=problems)


async def database_at_start(url: str, *, timeout: float = DATABASE_TIMEOUT_S) -> None:
    """Connect once with a short timeout; :class:`SettingsRefused` if the database is not there."""
    try:
        await check_database(url, timeout=timeout)
    except DatabaseUnreachable as err:
        raise SettingsRefused(
            f"STOREFLEET_CP_DATABASE_URL: {err}; start the database or fix the URL "
            "(host, port, database name, user)"
        ) from err
