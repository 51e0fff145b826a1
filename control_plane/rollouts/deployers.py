"""The deployer seam: how a rollout's devices are told their release and how it is read back.

How it works: the driver (:mod:`.driver`) decides *who* gets a release and *when* (waves, rate,
windows, gates, deadlines); a :class:`Deployer` does the *how*, one method a job:

- :meth:`Deployer.deliver` asks a page of notified devices to run the rollout's release and says
  which took it, which it refused (the device then fails with that reason) and leaves the rest
  for the next tick;
- :meth:`Deployer.roll_back` gives one device its previous release back (a halt or an abort);
- :meth:`Deployer.observe` reads the devices' progress where the deployer has to ask for it. The
  native path's devices report by themselves (``release.progress`` events through the ingest,
  :mod:`.progress`), so its ``observes`` is False and the driver never calls it.

Two implementations: :class:`control_plane.rollouts.native.NativeDeployer` (the retained
``DesiredRelease`` on the device's MQTT topic, the bundle over device-authenticated HTTPS) and
:class:`control_plane.rollouts.balena.BalenaDeployer` (balenaCloud through balena-sdk: pin the
devices to the release, read their status back). Which one drives a rollout is its tenant's
setting (:class:`Deployers`).

Errors (a deployer's own; the driver turns them into device or rollout states)::

    DeployerError
    ├── DeployerRefused      the deployer will not do it as configured (bad token, no such
    │                        release or fleet): the driver pauses the rollout with the reason
    └── DeployerUnavailable  it could not reach its service now: tried again next tick
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import RowMapping


class DeployerError(Exception):
    """A deployer could not do what the driver asked."""

    def __init__(self, deployer: str, reason: str) -> None:
        super().__init__(f"{deployer}: {reason}")
        self.deployer = deployer
        self.reason = reason


class DeployerRefused(DeployerError):  # noqa: N818 - named for what happened
    """Refused as configured: nothing will change until an operator fixes the setting."""


class DeployerUnavailable(DeployerError):  # noqa: N818 - named for what happened
    """Its service did not answer (or answered 5xx): the same call is tried next tick."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Delivery:
    """What a :meth:`Deployer.deliver` did with a page of devices."""

    delivered: list[str] = field(default_factory=list)
    #: device id → why this deployer cannot deliver to it (the device fails with it)
    refused: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Observed:
    """A device's state as its deployer reads it (one of :data:`.model.STATES`)."""

    device_id: str
    state: str
    detail: str


class Deployer(Protocol):
    """Tells devices their release and reads it back; rows are ``driver._DEVICE_ROWS``'."""

    name: str
    #: whether the driver must ask for progress (:meth:`observe`) rather than receive it
    observes: bool

    async def deliver(self, rollout: RowMapping, rows: Sequence[RowMapping]) -> Delivery:
        """Ask ``rows``' devices to run ``rollout``'s release."""

    async def roll_back(self, rollout: RowMapping, row: RowMapping) -> str:
        """Give one device its previous release back; what was done, for its history."""

    async def observe(self, rollout: RowMapping, rows: Sequence[RowMapping]) -> list[Observed]:
        """The state of ``rows``' devices where it changed or is known (others left out)."""


@dataclass(frozen=True, kw_only=True)
class Deployers:
    """Which deployer drives a rollout: its tenant's, else the native path."""

    native: Deployer
    by_tenant: Mapping[str, Deployer] = field(default_factory=dict)

    def for_tenant(self, tenant_id: str) -> Deployer:
        """The deployer of ``tenant_id``'s rollouts."""
        return self.by_tenant.get(tenant_id, self.native)
