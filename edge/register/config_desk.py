"""The register's side of configuration: hold for a restart, take live sections while running.

How it works: the fleet agent applies the control plane's configuration into
``<data_dir>/config/applied.json`` (:mod:`edge.agent.configuration`) and asks over the local
socket (:mod:`edge.agent.configuration.local_commands`):

* ``config.hold`` — answered ``ok`` only when no sale is open (no line in the cart, no payment
  started, no card terminal call); the register then shows "updating the store settings" and
  refuses new commands (busy) until the agent restarts it, or for ``HOLD_S`` if it never does.
  While a sale is open the answer is ``ok: false`` with why, and the agent asks again later.
* ``config.reload`` — the register re-reads the applied document and swaps in its live sections
  (receipt, staff, quick keys, register names, idle lock …) between two commands; refused when a
  restart section differs from what the register was composed with (then the agent restarts it).

Every other command goes on to the hub's runner (printer, drawer, RFID), as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.agent.commands import CommandArgs, CommandHandler, CommandRefused, CommandRunner
from edge.agent.configuration.files import AppliedUnreadable, read_applied
from edge.agent.configuration.local_commands import HOLD, HOLD_S, RELOAD
from edge.pos.applied_store import store_config_from_document
from edge.pos.register import Register
from edge.pos.store_config import StoreConfig
from protocols.messages import Command, CommandResult

log = logging.getLogger(__name__)

HOLDING = "Updating the store settings: one moment"


class VersionArgs(CommandArgs):
    """Which configuration version the agent is applying."""

    version: int = 0


def open_sale(register: Register) -> str | None:
    """Why the register cannot restart now (a sale is open), or None."""
    if register.busy is not None and register.busy != HOLDING:
        return f"the register is busy ({register.busy})"
    if register.payment is not None:
        return "a payment is in progress"
    if register.cart.lines:
        count = len(register.cart.lines)
        return f"a sale is open ({count} line{'' if count == 1 else 's'})"
    return None


class ConfigDesk:
    """Answers the agent's configuration commands for one register."""

    def __init__(
        self,
        *,
        data_dir: Path,
        register: Callable[[], Register | None],
        fit: Callable[[StoreConfig], StoreConfig] = lambda config: config,
        hold_s: float = HOLD_S,
    ) -> None:
        self.data_dir = data_dir
        self._register = register
        self._fit = fit  # receipts as wide as the printer's paper
        self.hold_s = hold_s
        self._release: asyncio.TimerHandle | None = None

    def runner(self, *, device_id: str, hub: Callable[[], CommandRunner | None]) -> CommandRunner:
        """The register's command runner: these two, then the hub's commands."""

        async def forward(command: Command) -> CommandResult:
            runner = hub()
            if runner is None:
                raise CommandRefused("the register has no peripherals to run it on")
            return await runner.run(command)

        return CommandRunner(
            device_id=device_id,
            handlers={
                HOLD: CommandHandler(VersionArgs, self.hold),
                RELOAD: CommandHandler(VersionArgs, self.reload),
            },
            forward=forward,
        )

    async def hold(self, args: VersionArgs) -> dict[str, Any]:
        """Hold new sales for a restart, or refuse while one is open."""
        register = self._register()
        if register is None:
            return {"held": True, "open_sale": False}
        why = open_sale(register)
        if why is not None:
            raise CommandRefused(why)
        register.busy = HOLDING
        register.changed()
        if self._release is not None:
            self._release.cancel()
        self._release = asyncio.get_running_loop().call_later(self.hold_s, self._let_go, register)
        log.info("holding for configuration %d: no sale is open; waiting to restart", args.version)
        return {"held": True, "open_sale": False}

    async def reload(self, args: VersionArgs) -> dict[str, Any]:
        """Take the live sections of the applied document without a restart."""
        register = self._register()
        if register is None:
            raise CommandRefused("no register is composed yet: restart to load the configuration")
        try:
            applied = read_applied(self.data_dir)
        except AppliedUnreadable as err:
            raise CommandRefused(str(err)) from err
        if applied is None:
            raise CommandRefused("no applied configuration to reload")
        new = store_config_from_document(applied.config, version=applied.version)
        current = register.config
        if current.config_version == 0 or new.restart_hashes != current.restart_hashes:
            raise CommandRefused("a section that needs a restart differs: restart the register")
        register.config = self._fit(new)
        register.changed()
        log.info("configuration %d taken live", applied.version)
        return {"version": applied.version}

    def _let_go(self, register: Register) -> None:
        """The restart never came (the agent died): sell again."""
        if register.busy == HOLDING:
            log.warning("no restart within %g s of holding; selling again", self.hold_s)
            register.busy = None
            register.changed()
