"""The app's background reconcile: the device broker's access list follows the registry.

It runs once when the control plane starts and then every few minutes, so a grant or a
withdrawal the broker missed (broker down during an enrolment, a control plane that died between
its commit and its command, a broker restored from an old file) heals without anyone acting.
Every instance may run it: each round reads the broker, then the registry, and only says again
what the registry says (`control_plane.provisioning.broker_access`).
"""

from __future__ import annotations

import asyncio
import logging
import random

from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from control_plane.provisioning.authority import FleetAuthority
from control_plane.provisioning.broker_access import BrokerAccessError
from control_plane.provisioning.errors import CaUnavailable
from control_plane.provisioning.settings import ProvisioningSettings
from mqttlink.backoff import Backoff

log = logging.getLogger(__name__)

#: Between rounds when the broker is in step; a failed round retries sooner, backing off to it
#: with the fleet's one backoff (:class:`mqttlink.backoff.Backoff`).
RECONCILE_INTERVAL = 300.0
_FIRST_RETRY = 1.0


def _authority(app: FastAPI) -> FleetAuthority | None:
    """The app's FleetAuthority (made like the provisioning router makes it), or None when
    provisioning is not configured."""
    authority: FleetAuthority | None = getattr(app.state, "provisioning", None)
    if authority is not None:
        return authority
    try:
        settings = getattr(app.state, "provisioning_settings", None) or ProvisioningSettings()
    except ValidationError as err:
        reason = err.errors()[0].get("msg", str(err)) if err.errors() else str(err)
        log.info("broker access: provisioning is not configured (%s); nothing to reconcile", reason)
        return None
    authority = FleetAuthority(settings=settings, engine=app.state.engine)
    app.state.provisioning = authority
    return authority


async def keep_broker_access_in_step(app: FastAPI, *, interval: float = RECONCILE_INTERVAL) -> None:
    """Reconcile at start, then every `interval` seconds, until cancelled.

    Runs under the app's supervisor, so it never returns: with nothing to keep (no provisioning,
    or a device broker without mTLS) it says so once and idles.
    """
    authority = _authority(app)
    if authority is not None and not authority.broker_access.managed:
        log.info(
            "broker access: the device broker %s has no mTLS and no access list; "
            "nothing to reconcile",
            authority.broker_access.broker.url,
        )
    if authority is None or not authority.broker_access.managed:
        await asyncio.Event().wait()  # idle until cancelled
        return
    retry = Backoff.capped(initial=_FIRST_RETRY, cap=interval)
    while True:
        # the router may have replaced the authority since (tests serve their own)
        access = getattr(app.state, "provisioning", authority).broker_access
        try:
            await access.reconcile(engine=app.state.engine)
        except (BrokerAccessError, CaUnavailable, SQLAlchemyError) as err:
            wait = retry.next_delay()
            log.warning("broker access: reconcile failed (%s); retrying in %.0f s", err, wait)
            await asyncio.sleep(wait)
            continue
        retry.reset()
        await asyncio.sleep(random.uniform(interval * 0.9, interval * 1.1))
