"""Applying the desired configuration: validate, never go back, live now or restart when safe.

How it works: the MQTT session hands every message on ``config`` to :meth:`ConfigApplier.receive`
(no I/O there). A message that is not an ``sf.config``, or a version not newer than the one
applied (or waiting), is ignored and counted. The document is validated with
:func:`protocols.store_config.parse_store_config`; a refusal is counted by the key at fault,
logged once in one line that names the key, the path and what to do, and reported as a
``config.refused`` event — the last good configuration stays applied. A valid one becomes the
*pending* version (a newer one replaces it) and :meth:`ConfigApplier.run` applies it:

* only live sections changed (:data:`protocols.store_config.APPLY`): write it
  (:mod:`edge.agent.configuration.files`) and ask the register to reload; if it cannot, it is
  restarted like below;
* a restart section changed, or there was no configuration before: ask the register to hold
  (``config.hold``): refused while a sale is open, so the agent asks again every ``retry_s``;
  once held (or when no register runs), write it and restart the register.

The ``support`` section is the agent's own: when it changed, support's SSH keys are written for
the image's root helper (:mod:`edge.agent.configuration.support_access`) before the register is
asked anything, so a register holding an open sale does not keep support out.

Either way the state then reports the new version and its per-key hashes (``on_change``) and a
``config.applied`` event says how. The whole version is applied at once, never a mix of two.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edge.agent.configuration import metrics
from edge.agent.configuration.files import (
    AppliedConfig,
    AppliedHead,
    AppliedUnreadable,
    read_head,
    write_applied,
)
from edge.agent.configuration.support_access import apply_support_access
from protocols.codec import decode
from protocols.errors import ProtocolError
from protocols.messages import DesiredConfig
from protocols.vocabulary import EventKind

if TYPE_CHECKING:
    from protocols.store_config import StoreConfig, StoreConfigRefused

log = logging.getLogger(__name__)

EventSink = Callable[[str, dict[str, Any]], None]


class RegisterControl(Protocol):
    """What applying needs of the register (:mod:`edge.agent.configuration.register_control`)."""

    def running(self) -> bool:
        """A register is connected and can be asked."""
        ...

    async def hold(self, version: int) -> str | None:
        """None: held for a restart (no sale open); else why not (a sale is open)."""
        ...

    async def reload(self, version: int) -> str | None:
        """None: the register took the live sections; else why not."""
        ...

    def restart(self) -> None:
        """Restart the register (or start it now if it is backing off)."""
        ...


class ConfigApplier:
    """The configuration of one appliance; :meth:`run` for the life of the agent."""

    def __init__(
        self,
        *,
        data_dir: Path,
        register: RegisterControl,
        emit: EventSink,
        on_change: Callable[[], None] = lambda: None,
        retry_s: float = 1.0,
        device_id: str = "",
    ) -> None:
        self.data_dir = data_dir
        self.register = register
        self.emit = emit
        self.on_change = on_change
        self.retry_s = retry_s
        self.device_id = device_id
        # version and hashes only: the schema is loaded when a configuration arrives (files.py)
        self.applied: AppliedHead | AppliedConfig | None = _load(data_dir)
        self.pending: tuple[int, StoreConfig] | None = None
        self.waiting_for: str | None = None  # why a pending version is not applied yet
        self._refused: int | None = None  # the last refused version: refused once, not per resend
        self._wake = asyncio.Event()

    @property
    def version(self) -> int:
        """The applied version (0: none)."""
        return 0 if self.applied is None else self.applied.version

    @property
    def hashes(self) -> dict[str, str]:
        """Per-key hashes of the applied document (empty: none)."""
        return {} if self.applied is None else dict(self.applied.hashes)

    def receive(self, payload: bytes, topic: str) -> None:
        """Take one message from ``config``; never raises."""
        try:
            message = decode(topic, payload).message
        except ProtocolError as err:
            metrics.REFUSED.labels(self.device_id, "$").inc()
            log.warning("config: message refused (%s); the control plane must resend it", err)
            return
        if not isinstance(message, DesiredConfig):
            metrics.REFUSED.labels(self.device_id, "$").inc()
            log.warning("config: not an sf.config message on %s; ignored", topic)
            return
        newest = max(self.version, self.pending[0] if self.pending else 0)
        if message.version <= newest or message.version == self._refused:
            metrics.IGNORED.labels(self.device_id).inc()
            log.debug("config: version %d ignored (have %d)", message.version, newest)
            return
        from protocols.store_config import StoreConfigRefused, parse_store_config

        try:
            config = parse_store_config(message.doc)
        except StoreConfigRefused as err:
            self._refuse(message.version, err)
            return
        self.pending = (message.version, config)
        self._wake.set()

    async def run(self) -> None:
        """Apply pending versions as they come; returns only when cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.pending is not None:
                if await self._apply(*self.pending):
                    break
                try:  # a newer version or the retry interval, whichever first
                    async with asyncio.timeout(self.retry_s):
                        await self._wake.wait()
                    self._wake.clear()
                except TimeoutError:
                    pass

    async def _apply(self, version: int, config: StoreConfig) -> bool:
        """Try to apply; False when it has to wait for the open sale to close."""
        from protocols.store_config import RESTART_SECTIONS, SECTIONS

        accepted = AppliedConfig.of(version, config)
        # the sections that changed, from the per-key hashes the applied file already holds:
        # neither the applied document re-read and validated nor both hashed again (1,000
        # appliances' bench: that was two thirds of an apply's time)
        before = None if self.applied is None else self.applied.hashes
        changed = frozenset(
            k for k in SECTIONS if before is None or before.get(k) != accepted.hashes[k]
        )
        restart = before is None or bool(changed & RESTART_SECTIONS)
        if "support" in changed:  # the agent's own section: support's SSH, whatever the register
            apply_support_access(self.data_dir, config.support, device_id=self.device_id)
        if not restart:
            self._write(accepted)
            why_not = await self.register.reload(version) if self.register.running() else None
            if why_not is None:
                self._done(version, changed, how="live")
                return True
            log.info(
                "config %d: the register cannot take it live (%s); restarting", version, why_not
            )
        if self.register.running():
            why_not = await self.register.hold(version)
            if why_not is not None:
                if self.waiting_for is None:
                    log.info("config %d waits for a safe point: %s", version, why_not)
                    metrics.WAITING.labels(self.device_id).set(1)
                self.waiting_for = why_not
                return False
        if self.version != version:
            self._write(accepted)
        self.register.restart()
        self._done(version, changed, how="restart")
        return True

    def _write(self, accepted: AppliedConfig) -> None:
        self.applied = accepted
        write_applied(self.data_dir, accepted)

    def _done(self, version: int, changed: frozenset[str], *, how: str) -> None:
        if self.pending is not None and self.pending[0] == version:
            self.pending = None
        self.waiting_for = None
        metrics.WAITING.labels(self.device_id).set(0)
        metrics.APPLIED.labels(self.device_id, how).inc()
        log.info("config %d applied (%s): %s", version, how, ", ".join(sorted(changed)) or "-")
        self.emit(
            EventKind.CONFIG_APPLIED,
            {"version": version, "how": how, "changed": sorted(changed)},
        )
        self.on_change()

    def _refuse(self, version: int, err: StoreConfigRefused) -> None:
        self._refused = version
        metrics.REFUSED.labels(self.device_id, err.key).inc()
        log.warning(
            "config %d refused at %s: %s; fix that key in the control plane and publish again"
            " (still running version %d)",
            version,
            err.path,
            err.reason,
            self.version,
        )
        self.emit(
            EventKind.CONFIG_REFUSED,
            {
                "version": version,
                "key": err.key,
                "path": err.path,
                "reason": err.reason,
                "problems": err.problems[:20],
                "running": self.version,
            },
        )


def _load(data_dir: Path) -> AppliedHead | None:
    try:
        return read_head(data_dir)
    except AppliedUnreadable as err:
        log.error("config: %s; waiting for the control plane to send it again", err)
        return None
