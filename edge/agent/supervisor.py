"""Supervision of the register: start it, watch it, restart it with backoff, call a crash loop.

How it works: :meth:`Supervisor.run` starts the register as a child process (its output appended
to ``<data_dir>/logs/register.log``) and watches three things at once: the process ending, the
local health contract (:class:`~edge.agent.register_link.RegisterLink`: ``hello`` within
``start_timeout_s``, then a heartbeat at least every ``heartbeat_timeout_s``), and a restart
asked for by a command. Whatever ends a run, the next start waits

    0 after the first failure in a row, then backoff_initial_s · 2^(n-2), at most backoff_max_s

so a register killed once is back at once, and one that dies on every start does not spin. A
failure is any end the agent did not ask for (an exit, a signal, silence); a restart asked for
by a command, or exit code 75 (the register enrolled and wants a fresh start), is not.
``crash_loop_after`` failures in a row make a crash loop: reported in ``state`` and once as an
``app.crash_loop`` event, while the agent goes on answering commands and trying (at
``backoff_max_s``). A register that stays ready for ``stable_after_s`` has its failures
forgotten; the first ready heartbeat after a crash loop reports ``app.recovered``.

The child dies with the agent: it gets SIGTERM when the agent process ends, however it ends
(``PR_SET_PDEATHSIG``), and a cancelled supervisor stops it with SIGTERM, then SIGKILL after
``stop_timeout_s``. A supervisor that cannot start the register at all (no such program) counts
that as a failed start like any other and keeps the agent up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.agent import metrics
from edge.agent.register_link import RegisterLink
from protocols.vocabulary import EventKind

log = logging.getLogger(__name__)

#: The register's exit code for "start me again" (edge.register.compose.EXIT_RESTART).
EXIT_RESTART = 75
PR_SET_PDEATHSIG = 1
WATCH_TICK_S = 0.1


class Phase(enum.StrEnum):
    """Where the register is, as ``state`` reports it."""

    STARTING = "starting"  # spawned, no hello yet
    RUNNING = "running"  # said hello, not ready to sell yet
    READY = "ready"  # ready to sell
    BACKING_OFF = "backing_off"  # ended; waiting before the next start
    STOPPED = "stopped"  # the agent is stopping


@dataclass(frozen=True, kw_only=True)
class SupervisorSettings:
    """Timing of supervision (from :class:`~edge.agent.settings.FleetAgentSettings`)."""

    heartbeat_timeout_s: float = 10.0
    start_timeout_s: float = 60.0
    stop_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 60.0
    crash_loop_after: int = 5
    stable_after_s: float = 30.0
    log_max_bytes: int = 5 * 1024 * 1024


@dataclass
class Supervision:
    """What the supervisor knows, for ``state``, commands and tests."""

    phase: Phase = Phase.STARTING
    pid: int | None = None
    starts: int = 0
    failures: int = 0  # in a row
    crash_loop: bool = False
    last_exit: str = ""
    last_exit_at: str = ""
    ready_since: float | None = None  # monotonic
    history: list[str] = field(default_factory=list)  # the last few ends, newest last


EventSink = Callable[[str, dict[str, Any]], None]


class Supervisor:
    """Starts and watches one register; run :meth:`run` for the life of the agent."""

    def __init__(
        self,
        *,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        link: RegisterLink,
        settings: SupervisorSettings,
        emit: EventSink,
        on_change: Callable[[], None] = lambda: None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.link = link
        self.settings = settings
        self.emit = emit
        self.on_change = on_change
        self.cwd = cwd
        self.status = Supervision()
        self._restart = asyncio.Event()
        self._process: asyncio.subprocess.Process | None = None

    def restart(self) -> int | None:
        """Stop the register (SIGTERM) and start it again at once; not counted as a failure.

        Returns the pid being replaced (None when none runs: the pending start happens now).
        """
        self._restart.set()
        return self.status.pid

    async def run(self) -> None:
        """Start, watch, restart, until cancelled; stops the register on the way out."""
        why = "boot"
        try:
            while True:
                self._restart.clear()
                outcome = await self._one_run(why)
                why = self._account(outcome)
                delay = self.delay()
                if delay > 0:
                    self._set_phase(Phase.BACKING_OFF)
                    log.info(
                        "register: next start in %.1f s (failure %d in a row)",
                        delay,
                        self.status.failures,
                    )
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._restart.wait()  # a restart command cuts the wait short
        finally:
            self._set_phase(Phase.STOPPED)
            await self._stop_child()

    def delay(self) -> float:
        """The pause before the next start, from the failures in a row."""
        n = self.status.failures
        if n <= 1:
            return 0.0
        s = self.settings
        return float(min(s.backoff_max_s, s.backoff_initial_s * 2 ** (n - 2)))

    # -- one run --------------------------------------------------------------------------------

    async def _one_run(self, why: str) -> str:
        """Start the register and watch it until it ends; returns how it ended."""
        self.link.forget()
        self._rotate_log()
        self.status.starts += 1
        metrics.REGISTER_STARTS.labels(why).inc()
        self._set_phase(Phase.STARTING)
        try:
            process = await self._spawn(why)
        except OSError as err:
            log.error("register could not be started (%s): %s", self.argv[0], err)
            return f"not started: {err.strerror or err}"
        self._process = process
        self.status.pid = process.pid
        log.info("register started (pid %d, %s)", process.pid, why)
        if why != "boot":
            self.emit(
                EventKind.APP_RESTARTED,
                {"why": why, "pid": process.pid, "starts": self.status.starts},
            )
        try:
            return await self._watch(process)
        finally:
            # the agent stopping cancels the watch: the register stops (in order) before the
            # agent does, or it would go on selling and replicating with nobody watching
            await self._stop_child()
            self.status.pid = None
            self.status.ready_since = None
            self._process = None
            self.link.forget()

    async def _spawn(self, why: str) -> asyncio.subprocess.Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with self.log_path.open("ab") as output:
            output.write(f"--- {stamp} the fleet agent starts the register ({why})\n".encode())
            output.flush()
            return await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                preexec_fn=_die_with_parent,
            )

    async def _watch(self, process: asyncio.subprocess.Process) -> str:
        """Until the process ends, goes silent, or a restart is asked for."""
        s = self.settings
        started = time.monotonic()
        exited = asyncio.ensure_future(process.wait())
        asked = asyncio.ensure_future(self._restart.wait())
        try:
            while True:
                await asyncio.wait(
                    [exited, asked], timeout=WATCH_TICK_S, return_when=asyncio.FIRST_COMPLETED
                )
                if exited.done():
                    return _how(exited.result())
                if asked.done():
                    await self._stop_child()
                    return "restart"
                self._follow_readiness()
                now = time.monotonic()
                beat = self.link.last_beat_at
                if beat is None and now - started > s.start_timeout_s:
                    log.warning("register said nothing within %g s; stopping it", s.start_timeout_s)
                    await self._stop_child()
                    return "hung at start"
                if beat is not None and now - beat > s.heartbeat_timeout_s:
                    log.warning("register silent for %g s; stopping it", s.heartbeat_timeout_s)
                    await self._stop_child()
                    return "hung"
        finally:
            exited.cancel()
            asked.cancel()

    def _follow_readiness(self) -> None:
        """Phase from the link; a crash loop ends at the first ready heartbeat."""
        status = self.status
        if self.link.ready:
            if status.ready_since is None:
                status.ready_since = time.monotonic()
                self._set_phase(Phase.READY)
                if status.crash_loop:
                    status.crash_loop = False
                    metrics.CRASH_LOOP.set(0)
                    log.info("register ready again after a crash loop")
                    self.emit(EventKind.APP_RECOVERED, {"starts": status.starts, "pid": status.pid})
            elif status.failures and time.monotonic() - status.ready_since >= (
                self.settings.stable_after_s
            ):
                status.failures = 0
                self.on_change()
        elif self.link.connected:
            status.ready_since = None
            self._set_phase(Phase.RUNNING)

    def _account(self, outcome: str) -> str:
        """Count the end of a run; returns why the next start happens."""
        status = self.status
        status.last_exit = outcome
        status.last_exit_at = datetime.now(UTC).isoformat(timespec="seconds")
        status.history = [*status.history[-9:], f"{status.last_exit_at} {outcome}"]
        metrics.REGISTER_EXITS.labels(_label(outcome)).inc()
        if outcome in ("restart", f"exit {EXIT_RESTART}"):
            log.info("register ended (%s); starting it again", outcome)
            status.failures = 0
            self.on_change()
            return "restart command" if outcome == "restart" else "enrolled"
        status.failures += 1
        log.warning("register ended (%s): failure %d in a row", outcome, status.failures)
        if status.failures >= self.settings.crash_loop_after and not status.crash_loop:
            status.crash_loop = True
            metrics.CRASH_LOOP.set(1)
            log.error(
                "register in a crash loop: %d failed starts in a row, the last %s; the agent"
                " stays online and keeps trying every %g s at most",
                status.failures,
                outcome,
                self.settings.backoff_max_s,
            )
            self.emit(
                EventKind.APP_CRASH_LOOP,
                {"failures": status.failures, "last_exit": outcome, "history": status.history},
            )
        self.on_change()
        return "crashed" if "hung" not in outcome else "hung"

    async def _stop_child(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout_s``; waits for the end either way."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(self.settings.stop_timeout_s):
                await process.wait()
        except TimeoutError:
            log.warning(
                "register ignored SIGTERM for %g s; killing it", self.settings.stop_timeout_s
            )
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    def _rotate_log(self) -> None:
        """Keep one previous log: ``register.log`` past its limit becomes ``register.log.1``."""
        with contextlib.suppress(FileNotFoundError):
            if self.log_path.stat().st_size > self.settings.log_max_bytes:
                self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))

    def _set_phase(self, phase: Phase) -> None:
        if self.status.phase is not phase:
            self.status.phase = phase
            self.on_change()


def _how(returncode: int) -> str:
    """How a process ended, in words: ``exit 1``, ``signal SIGKILL``."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit {returncode}"


def _label(outcome: str) -> str:
    """A bounded metric label for an outcome (exit codes and signals are few)."""
    return outcome.split(":", maxsplit=1)[0][:32]


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the agent dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgid(0, 0)  # own process group: Ctrl-C at the agent's terminal reaches the agent only
