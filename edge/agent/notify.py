"""sd_notify over ``$NOTIFY_SOCKET``: tell systemd the agent is ready, alive, and stopping.

How it works (sd_notify(3)): a ``Type=notify`` unit gets the address of a datagram socket in
``NOTIFY_SOCKET`` — an absolute path, or ``@name`` for Linux's abstract namespace — and, with
``WatchdogSec=``, the interval in ``WATCHDOG_USEC`` (with ``WATCHDOG_PID``, the process it is
meant for). A notification is one datagram of newline-separated ``KEY=VALUE`` lines:

    READY=1      start-up is done (systemd holds ``systemctl start`` and ordering until then)
    WATCHDOG=1   still alive; at least once per interval, or systemd kills and restarts us
    STATUS=…     one line shown by ``systemctl status``
    STOPPING=1   shutting down on purpose

No library: one ``sendto()`` on an ``AF_UNIX``/``SOCK_DGRAM`` socket. Without ``NOTIFY_SOCKET``
(tests, the demo, a terminal) every call does nothing and says so by returning False, so the same
agent runs everywhere.

Why the watchdog is fed from the agent's event loop (:meth:`Notifier.run_watchdog`): a ping
proves that loop still turns; a wedged loop stops the pings and systemd restarts the agent. A
failed send never raises into the agent: it is counted
(``storefleet_agent_systemd_notify_failures_total``) and logged once, because the agent must
outlive a confused service manager rather than die of it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import Counter

log = logging.getLogger(__name__)

NOTIFY_SOCKET = "NOTIFY_SOCKET"
WATCHDOG_USEC = "WATCHDOG_USEC"
WATCHDOG_PID = "WATCHDOG_PID"

NOTIFY_FAILURES = Counter(
    "storefleet_agent_systemd_notify_failures",
    "Notifications to systemd that could not be sent (socket gone, refused, full)",
    ["state"],
)


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without systemd's notify variables, for a process the agent starts.

    Only the agent speaks for the unit: the register it supervises must not believe it is the
    one systemd watches (``NotifyAccess=main`` would drop its messages anyway).
    """
    return {
        key: value
        for key, value in environ.items()
        if key not in {NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID}
    }


@dataclass(slots=True)
class Notifier:
    """``Notifier.from_environment()``: the unit's notify socket and watchdog, if any."""

    address: str | None = None
    watchdog_s: float | None = None
    _warned: bool = field(default=False, repr=False)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, *, pid: int | None = None
    ) -> Notifier:
        """Read ``NOTIFY_SOCKET`` and the watchdog meant for ``pid`` (default: this process)."""
        env = os.environ if environ is None else environ
        address = env.get(NOTIFY_SOCKET) or None
        if address is not None and not address.startswith(("/", "@")):
            log.warning(
                "ignoring %s=%r: systemd gives an absolute path or @abstract name; "
                "check the unit's Type=notify",
                NOTIFY_SOCKET,
                address,
            )
            address = None
        return cls(address=address, watchdog_s=_watchdog_interval(env, pid or os.getpid()))

    @property
    def enabled(self) -> bool:
        """Whether there is a service manager to tell."""
        return self.address is not None

    def send(self, **state: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; True when systemd's socket took it."""
        if self.address is None or not state:
            return False
        # a newline in a value would start another assignment: each value stays one line
        message = "\n".join(f"{key}={' '.join(value.split())}" for key, value in state.items())
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)  # a full queue must not stall the agent's loop
                sock.sendto(message.encode(), target)
        except OSError as err:
            NOTIFY_FAILURES.labels(state=",".join(sorted(state))).inc()
            if not self._warned:
                self._warned = True
                log.warning(
                    "cannot notify systemd at %s (%s); the unit's watchdog will restart the "
                    "agent if this persists: check NOTIFY_SOCKET and NotifyAccess=",
                    self.address,
                    err,
                )
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Start-up is done: systemd finishes ``start`` and starts what waits for us."""
        return self.send(READY="1", **({"STATUS": status} if status else {}))

    def watchdog(self) -> bool:
        """Still alive."""
        return self.send(WATCHDOG="1")

    def status(self, text: str) -> bool:
        """One line for ``systemctl status``."""
        return self.send(STATUS=text)

    def stopping(self, status: str | None = None) -> bool:
        """Shutting down on purpose (not a crash)."""
        return self.send(STOPPING="1", **({"STATUS": status} if status else {}))

    async def run_watchdog(self) -> None:
        """Ping at half the interval for as long as the event loop runs; returns if unwatched."""
        if self.watchdog_s is None or not self.enabled:
            return
        while True:
            self.watchdog()
            await asyncio.sleep(self.watchdog_s / 2)


def _watchdog_interval(env: Mapping[str, str], pid: int) -> float | None:
    """``WATCHDOG_USEC`` in seconds if the watchdog is meant for ``pid``, else None."""
    try:
        usec = int(env.get(WATCHDOG_USEC, ""))
    except ValueError:
        return None
    target = env.get(WATCHDOG_PID)
    if target is not None and target.strip() != str(pid):
        return None  # set for another process (we were started by it, not by systemd)
    return usec / 1_000_000 if usec > 0 else None
