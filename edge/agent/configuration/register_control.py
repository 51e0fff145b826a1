"""The register as configuration applying sees it: the local socket and the supervisor.

The two questions go as the contract's ``command``s (:mod:`edge.agent.configuration.local_commands`)
with a short timeout: a register that does not answer is treated as one that cannot hold or
reload, and asked again later — never restarted under a cashier's hands because it was slow.
"""

from __future__ import annotations

import time
import uuid

from edge.agent.commands import CommandRefused
from edge.agent.configuration.local_commands import HOLD, RELOAD
from edge.agent.register_link import RegisterLink
from edge.agent.supervisor import Supervisor
from protocols.messages import Command


class LinkedRegister:
    """:class:`~edge.agent.configuration.applier.RegisterControl` over the socket and supervisor."""

    def __init__(
        self, *, link: RegisterLink, supervisor: Supervisor | None, timeout_s: float = 5.0
    ) -> None:
        self.link = link
        self.supervisor = supervisor  # None: another runs the register (the demo)
        self.timeout_s = timeout_s

    def running(self) -> bool:
        """A register said hello on an open connection."""
        return self.link.connected

    async def hold(self, version: int) -> str | None:
        """Ask the register to hold new sales for a restart; None when it does.

        A live update lease in the last heartbeat (a sale or payment open, the releases' word
        for it) answers without asking; otherwise the register decides, race-free.
        """
        beat = self.link.heartbeat
        lease = None if beat is None else beat.lease
        if lease is not None and lease.expires_at > time.time() * 1000:
            return f"{lease.reason} (update lease held by {lease.owner})"
        return await self._ask(HOLD, version)

    async def reload(self, version: int) -> str | None:
        """Ask the register to re-read the live sections; None when it did."""
        return await self._ask(RELOAD, version)

    def restart(self) -> None:
        """Restart the register through its supervisor."""
        if self.supervisor is not None:
            self.supervisor.restart()

    async def _ask(self, name: str, version: int) -> str | None:
        command = Command(
            id=f"config-{uuid.uuid4().hex[:12]}", name=name, args={"version": version}
        )
        try:
            result = await self.link.call(command, timeout=self.timeout_s)
        except CommandRefused as err:
            return str(err)
        return None if result.ok else (result.error or f"{name} refused")
