"""The native deployer: the retained ``DesiredRelease`` on each device's MQTT ``release`` topic.

How it works: :meth:`NativeDeployer.deliver` builds each device's ``DesiredRelease`` (the bundle's
device-authenticated URL on this control plane, its sha256 and signature, the device's maintenance
window) and publishes it retained, QoS 1, a page in parallel; a device offline now gets it when it
connects. The fleet agent downloads, verifies, installs, watches and commits or reverts on its
own, and reports each step as a ``release.progress`` event (:mod:`.progress`), so nothing is
polled (``observes`` is False). A rollback publishes the previous release as desired.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.releases.tables import releases
from control_plane.rollouts import windows
from control_plane.rollouts.deployers import Delivery, DeployerUnavailable, Observed
from protocols.codec import encode
from protocols.messages import DesiredRelease
from protocols.store_config import OpeningHours
from protocols.topics import Channel, device_topic

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """The control plane's broker connection (the ingest worker's)."""

    async def publish(
        self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False
    ) -> None:
        """Publish; raises :class:`ConnectionError` when there is no connection."""


class NativeDeployer:
    """The appliances' own agent, told over MQTT; bundles served at ``base_url``."""

    name = "native"
    observes = False

    def __init__(self, *, engine: AsyncEngine, publisher: Publisher, base_url: str) -> None:
        self.engine = engine
        self.publisher = publisher
        self.base_url = base_url.rstrip("/")
        self._releases: dict[str, RowMapping] = {}
        self._hours = windows.HoursCache()

    def _url(self, device_id: str, version: str) -> str:
        return f"{self.base_url}/api/devices/{device_id}/releases/{version}/bundle"

    async def _desired(
        self,
        rollout: RowMapping,
        row: RowMapping,
        version: str,
        hours: OpeningHours | None = None,
    ) -> DesiredRelease | None:
        release = self._releases.get(version)
        if release is None:
            async with self.engine.connect() as conn:
                release = (
                    (await conn.execute(select(releases).where(releases.c.version == version)))
                    .mappings()
                    .first()
                )
            if release is None:
                return None
            self._releases[version] = release  # a published release never changes
        window = windows.window_for(
            store_window=row["store_window"],
            store_zone=row["timezone"],
            hours=hours,
            rollout_window=rollout["maintenance_window"],
        )
        return DesiredRelease(
            version=version,
            url=self._url(row["device_id"], version),
            sha256=release["sha256"],
            signature=release["signature"],
            window=None if window is None else window.label(),
            rollout=rollout["id"],
            force=True if rollout["force"] else None,
        )

    async def _publish(self, device_id: str, message: DesiredRelease) -> bool:
        try:
            await self.publisher.publish(
                device_topic(device_id, Channel.RELEASE), encode(message), 1, retain=True
            )
        except ConnectionError as err:
            log.warning(
                "rollout: desired release %s for %s not published (%s); sent again next tick",
                message.version,
                device_id,
                err,
            )
            return False
        return True

    async def deliver(self, rollout: RowMapping, rows: Sequence[RowMapping]) -> Delivery:
        """Publish each device's desired release (QoS 1, retained, in parallel); a device
        whose publication failed, or whose release is missing, is left for the next tick."""
        async with self.engine.connect() as conn:
            hours = await windows.opening_hours(conn, [r["device_id"] for r in rows], self._hours)
        messages = [
            await self._desired(rollout, r, rollout["release_version"], hours.get(r["device_id"]))
            for r in rows
        ]
        pairs = [(row, m) for row, m in zip(rows, messages, strict=True) if m is not None]
        sent = await asyncio.gather(*(self._publish(row["device_id"], m) for row, m in pairs))
        return Delivery(
            delivered=[row["device_id"] for (row, _), ok in zip(pairs, sent, strict=True) if ok]
        )

    async def roll_back(self, rollout: RowMapping, row: RowMapping) -> str:
        """Publish the device's previous release as desired, if this control plane has it."""
        previous = row["previous_release"]
        message = (
            await self._desired(rollout, row, previous)
            if previous and previous != rollout["release_version"]
            else None
        )
        if message is None:
            return (
                f"no rollback: its previous release {previous or '(unknown)'} is not "
                "published on this control plane"
            )
        if not await self._publish(row["device_id"], message):
            raise DeployerUnavailable(self.name, "the broker did not take the rollback")
        return f"rolled back: {previous} published as its desired release"

    async def observe(self, rollout: RowMapping, rows: Sequence[RowMapping]) -> list[Observed]:
        """Nothing to ask: the agents report their progress themselves."""
        del rollout, rows
        return []
