"""A configuration change published wave by wave, with the rollouts' gates (issue 12).

Why: a bad printer setting published to a whole tenant at once stops every register's receipts
at the same moment. Published through waves it reaches one canary first; when the canary's
printer is reported unhealthy the gate halts and the canary gets its previous document back.

How it works (:func:`publish_in_waves`, run until the change completed or halted):

1. The change is previewed as the real one would be (:func:`.preview.preview_change`: refused
   the same way, nothing stored); the registers whose document it changes are ordered by id
   and given their wave by the rollouts' own rule (:func:`control_plane.rollouts.model.
   assign_waves`, the same :class:`~control_plane.rollouts.model.WaveIn` specs: a canary of 1,
   percentages, soak, success and failure thresholds).
2. A wave is *notified* by setting the key on each of its registers' own layer — an ordinary,
   audited, validated change that the configuration link publishes at once. Registers not yet
   reached keep their document; nothing else of the configuration model is bypassed.
3. Each register then settles from what it reports (``device_state``, kept by the ingest from
   its retained ``state``): ``failed`` when it refused the version (a ``config.refused`` event)
   or, once it reports the version, any peripheral is unhealthy (:func:`control_plane.devices.
   state.problems`; the register's own "not running" while the agent restarts it is not counted,
   its crash loop is); ``succeeded`` when it reported the version and stayed healthy for
   ``health_s`` (a printer is probed after the register restarts: success needs a window, as a
   release's does); ``timed_out`` when it has not reported the version ``deadline_s`` after it
   was notified.
4. The wave's gates are the rollouts' (:func:`~control_plane.rollouts.model.halt_reason`,
   :func:`~control_plane.rollouts.model.wave_passed`, then ``soak_s``). A halt rolls back every
   register notified so far by deleting the key from its layer: its document is what it was
   before (a new version with the old content: an appliance never goes back in version).
5. After the last wave the key is set on the layer it was meant for and removed from the
   registers' layers, which changes no document (each already has the value): the change is
   where an operator would look for it, with its history and provenance.

What it is not (yet): a persistent rollout. The run lives in the calling task; a control plane
that stops mid-wave leaves the registers' own layer values in place (visible, each audited) for
an operator to finish or delete. It has no maintenance windows (a configuration change applies
live or waits for a sale to close on the appliance) and no console page.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.alerts.tables import device_events
from control_plane.configuration import preview, service
from control_plane.configuration.errors import InvalidConfiguration
from control_plane.configuration.layers import Layer
from control_plane.configuration.tables import config_effective
from control_plane.devices.state import problems
from control_plane.devices.tables import device_state
from control_plane.operators.audit import Actor
from control_plane.rollouts.model import WaveIn, assign_waves, halt_reason, tally, wave_passed
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.vocabulary import EventKind

DeviceState = Literal["pending", "notified", "applied", "succeeded", "failed", "timed_out"]
FINAL: frozenset[str] = frozenset({"succeeded", "failed", "timed_out"})


@dataclass(frozen=True, kw_only=True)
class StagedSettings:
    """How often the run looks, and how long a register has to apply and stay healthy."""

    tick_s: float = 1.0
    health_s: float = 60.0
    deadline_s: float = 900.0


@dataclass(kw_only=True)
class StagedDevice:
    """One register of the change: its wave, where it stands and why."""

    device_id: str
    wave: int
    state: DeviceState = "pending"
    detail: str = ""
    version: int | None = None  # the version that carries the change to it
    notified_at: float = 0.0
    applied_at: float = 0.0  # when it first reported ``version``
    rolled_back_to: int | None = None  # the version that took the change away again


@dataclass(kw_only=True)
class StagedOutcome:
    """How a staged change ended: ``completed`` or ``halted`` (with why)."""

    status: Literal["completed", "halted"]
    reason: str = ""
    waves_done: int = 0
    devices: list[StagedDevice] = field(default_factory=list)

    def device(self, device_id: str) -> StagedDevice:
        """One register's outcome."""
        return next(d for d in self.devices if d.device_id == device_id)


async def publish_in_waves(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    actor: Actor,
    layer: Layer,
    target: str,
    key: str,
    value: Any,
    waves: Sequence[WaveIn],
    poke: Callable[[], None] = lambda: None,
    settings: StagedSettings | None = None,
) -> StagedOutcome:
    """Set ``key`` to ``value`` on ``layer``/``target`` through ``waves`` (module docstring);
    refused before anything is stored like :func:`.service.set_setting` would refuse it."""
    tuning = settings or StagedSettings()
    shown = await preview.preview_change(
        engine, scope=scope, actor=actor, layer=layer, target=target, values={key: value}
    )
    if shown.invalid:  # the real change would be refused: refuse it the same way
        broken = shown.invalid[0]
        raise InvalidConfiguration(
            key=broken.key,
            path=broken.path,
            why=broken.reason,
            devices=len(shown.invalid),
            example=broken.device_id,
        )
    ids = sorted(d.device_id for d in shown.changed)
    numbers = assign_waves(ids, waves)
    devices = [StagedDevice(device_id=d, wave=n) for d, n in zip(ids, numbers, strict=True)]
    run = _Run(engine, scope, actor, key, value, poke, tuning)
    for index, spec in enumerate(waves):
        wave = [d for d in devices if d.wave == index]
        await run.notify(wave)
        reason = await run.settle(spec, wave)
        if reason is not None:
            await run.roll_back([d for d in devices if d.state != "pending"])
            return StagedOutcome(status="halted", reason=reason, waves_done=index, devices=devices)
        await asyncio.sleep(spec.soak_s)
    await service.set_setting(
        engine, scope=scope, actor=actor, layer=layer, target=target, key=key, value=value
    )
    for device in devices:
        await service.delete_setting(
            engine, scope=scope, actor=actor, layer=Layer.REGISTER, target=device.device_id, key=key
        )
    poke()
    return StagedOutcome(status="completed", waves_done=len(waves), devices=devices)


class _Run:
    """The steps of one staged change (module docstring, 2-4)."""

    def __init__(
        self,
        engine: AsyncEngine,
        scope: TenantScope,
        actor: Actor,
        key: str,
        value: Any,
        poke: Callable[[], None],
        settings: StagedSettings,
    ) -> None:
        self.engine, self.scope, self.actor = engine, scope, actor
        self.key, self.value, self.poke, self.settings = key, value, poke, settings

    async def notify(self, wave: Sequence[StagedDevice]) -> None:
        for device in wave:
            await service.set_setting(
                self.engine,
                scope=self.scope,
                actor=self.actor,
                layer=Layer.REGISTER,
                target=device.device_id,
                key=self.key,
                value=self.value,
            )
            device.version = await self._version(device.device_id)
            device.state, device.notified_at = "notified", time.monotonic()
        self.poke()

    async def settle(self, spec: WaveIn, wave: Sequence[StagedDevice]) -> str | None:
        """Wait for the wave's registers; why the rollout halts, or None when it passed."""
        while True:
            await self._look(wave)
            counts = tally([d.state for d in wave])
            reason = halt_reason(spec, counts)
            if reason is not None:
                return reason
            if all(d.state in FINAL for d in wave):
                if wave_passed(spec, counts):
                    return None
                return (
                    f"{counts.succeeded} of {counts.size} registers succeeded, the wave needs "
                    f"{spec.success_percent} %"
                )
            await asyncio.sleep(self.settings.tick_s)

    async def roll_back(self, notified: Sequence[StagedDevice]) -> None:
        for device in notified:
            await service.delete_setting(
                self.engine,
                scope=self.scope,
                actor=self.actor,
                layer=Layer.REGISTER,
                target=device.device_id,
                key=self.key,
            )
            device.rolled_back_to = await self._version(device.device_id)
        self.poke()

    async def _look(self, wave: Sequence[StagedDevice]) -> None:
        waiting = {d.device_id: d for d in wave if d.state in ("notified", "applied")}
        if not waiting:
            return
        async with self.engine.connect() as conn:
            reported = {
                row.device_id: row
                for row in await conn.execute(
                    select(device_state).where(device_state.c.device_id.in_(waiting))
                )
            }
            refusals = await conn.execute(
                select(device_events.c.device_id, device_events.c.body).where(
                    device_events.c.device_id.in_(waiting),
                    device_events.c.kind == EventKind.CONFIG_REFUSED.value,
                )
            )
            refused = {row.device_id: _body(row.body) for row in refusals}
        now = time.monotonic()
        for device_id, device in waiting.items():
            _settle(device, reported.get(device_id), refused.get(device_id), now, self.settings)

    async def _version(self, device_id: str) -> int:
        async with self.engine.connect() as conn:
            version = await conn.scalar(
                select(config_effective.c.version).where(config_effective.c.device_id == device_id)
            )
        return int(version or 0)


def _settle(
    device: StagedDevice,
    row: Any,
    refusal: dict[str, Any] | None,
    now: float,
    settings: StagedSettings,
) -> None:
    """Move one register on from what it reported (module docstring, 3)."""
    if refusal is not None and refusal.get("version") == device.version:
        device.state, device.detail = "failed", f"refused: {refusal.get('reason', '')}"
        return
    at_version = (
        row is not None and device.version is not None and row.config_version >= (device.version)
    )
    if not at_version:
        if now - device.notified_at > settings.deadline_s:
            device.state = "timed_out"
            device.detail = f"did not report version {device.version} in {settings.deadline_s} s"
        return
    if device.state == "notified":
        device.state, device.applied_at = "applied", now
    unwell = problems(_judged(_body(row.peripherals)))
    if unwell:
        device.state, device.detail = "failed", "; ".join(unwell)
    elif now - device.applied_at >= settings.health_s:
        device.state, device.detail = "succeeded", f"healthy {settings.health_s} s at the version"


def _judged(peripherals: dict[str, Any]) -> dict[str, Any]:
    """The peripherals a register is judged by: all but its own "not running" while the agent
    restarts it for a restart section (a crash loop still counts)."""
    register = peripherals.get("register")
    if isinstance(register, dict) and not str(register.get("error", "")).startswith("crash loop"):
        peripherals = {k: v for k, v in peripherals.items() if k != "register"}
    return {k: v for k, v in peripherals.items() if isinstance(v, dict)}


def _body(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
