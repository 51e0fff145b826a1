"""``python -m edge.agent.kiosk_session --url URL -- COMMAND…``: the kiosk session, Type=notify.

Why a wrapper: cage and Chromium know nothing of sd_notify, so as ``Type=simple`` systemd calls
the kiosk "started" the moment cage is spawned and never notices a session that hangs. This
small process (the standard library and :mod:`edge.agent.notify`, nothing of the register) runs
the session's command and speaks for it:

* ``READY=1`` once the kiosk URL answers HTTP (the register serves its page: the screen shows
  the till, not an error page) — or, at the latest, after ``--ready-timeout-s`` with a ``STATUS``
  saying the page does not answer: a register that will not start must not keep the screen
  dark or the unit failing; Chromium shows its error page and reloads by itself;
* the command starts when the page answers (or at that deadline), so Chromium's first load is
  the page: on the twin a Chromium started before the register answered stayed white; a
  session that had to start without the page is started again, once, when it answers;
* a browser that runs but never opens the page (a white screen: on the twin Chromium's network
  service sometimes died during its first load and the page never came) is started again: the
  register counts the pages that hold its live WebSocket open (``GET /kiosk/screens``), and a
  session whose page has not been open for ``--blank-timeout-s`` while the register answered is
  ended and started afresh, the wait doubling after each such restart (up to 8 times) so a slow
  machine is not restarted for ever; a register without that count (an older app release) is
  not judged;
* ``WATCHDOG=1`` from this loop at half of ``WatchdogSec=`` for as long as the command lives, so
  a wedged wrapper is restarted; ``STATUS`` follows whether the page answers (probed every
  ``--probe-every-s``);
* when the command ends the wrapper ends with its exit status (a signal N as 128+N), and the
  unit's ``Restart=always`` brings the session back; SIGTERM or SIGINT are passed on to the
  command, ``STOPPING=1`` said, and its end awaited;
* every signal that reaches it is logged, so the journal says what ended a session. SIGHUP ends
  nothing: it is what a hangup of the session's terminal sends (systemd hangs up ``TTYPath=``
  whenever it starts one of the unit's commands with ``TTYVHangup=yes``, the
  ``ExecStartPost=`` too, in systemd 252), and by default it killed the wrapper without a word
  (systemd calls a death by SIGHUP a clean exit: "deactivated successfully"). The command runs
  in a session of its own, so a hangup of the wrapper's terminal never reaches cage or Chromium.

Before it starts the command it brings its own virtual terminal to the front (``TTYPath=``):
systemd hands the unit /dev/tty7 as its controlling terminal but does not switch to it, and the
machine boots showing tty1. With tty7 in front the foreground terminal is the kiosk's (what the
keyboard's console keys, such as SysRq's SAK, act on), and logind counts the session as the
seat's active one. The owner of a controlling VT may switch to it without any privilege.

The command never gets the notify socket (:func:`~edge.agent.notify.child_environment`): only
this process speaks for the unit (``NotifyAccess=main``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from edge.agent.notify import Notifier, child_environment

log = logging.getLogger("storefleet.kiosk_session")

PROBE_TIMEOUT_S = 2.0
#: the register's count of pages holding the kiosk's live WebSocket open (edge/kiosk/app.py)
SCREENS_PATH = "/kiosk/screens"
#: the longest wait for the page, as a multiple of ``--blank-timeout-s``
BLANK_BACKOFF_MAX = 8
#: linux/vt.h: make VT N the foreground one
VT_ACTIVATE = 0x5606
VIRTUAL_TERMINAL = re.compile(r"/dev/tty([1-9][0-9]?)")


def activate_own_vt(fd: int = 0) -> int | None:
    """Switch the console to the VT on ``fd`` (the session's TTYPath=); its number, or None
    when ``fd`` is not a virtual terminal (a test, a nested session) or the switch is refused."""
    try:
        name = os.ttyname(fd)
    except OSError:
        return None
    found = VIRTUAL_TERMINAL.fullmatch(name)
    if found is None:
        return None
    number = int(found.group(1))
    try:
        fcntl.ioctl(fd, VT_ACTIVATE, number)
    except OSError as err:
        log.warning(
            "could not bring %s to the front (%s): the screen stays on another console until"
            " someone switches to it (Ctrl+Alt+F%d)",
            name,
            err,
            number,
        )
        return None
    log.info("brought %s to the front for the kiosk session", name)
    return number


async def http_get(url: str, *, body: bool = False) -> tuple[int, bytes] | None:
    """The status (and with ``body``, the body) of an HTTP/1.0 GET of ``url``; None when it
    does not answer HTTP within :data:`PROBE_TIMEOUT_S`."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=parts.scheme == "https" or None
            )
            try:
                writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode("latin-1"))
                await writer.drain()
                status_line = await reader.readline()
                content = await _rest(reader) if body else b""
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError, ValueError):
        return None
    fields = status_line.split()
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
        return None
    return int(fields[1]), content


async def _rest(reader: asyncio.StreamReader, limit: int = 64 * 1024) -> bytes:
    """The body after the status line: HTTP/1.0, so it ends where the server closes. Read to
    the end, not once: uvicorn writes the headers and the body separately, and one read got
    only the headers (seen on the twin: the count was never read)."""
    received = b""
    while len(received) < limit and (chunk := await reader.read(limit - len(received))):
        received += chunk
    return received.partition(b"\r\n\r\n")[2]


async def page_answers(url: str) -> bool:
    """Whether ``url`` answers an HTTP GET with a status below 500 (the page is served)."""
    answer = await http_get(url)
    return answer is not None and answer[0] < 500


def screens_url(url: str) -> str:
    """Where the register that serves the kiosk page ``url`` counts its open pages."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, SCREENS_PATH, "", ""))


async def open_screens(url: str) -> int | None:
    """How many pages hold the register's live WebSocket open; None when the register does
    not say (not answering, or an app release without the count)."""
    answer = await http_get(screens_url(url), body=True)
    if answer is None or answer[0] != 200:
        return None
    try:
        count = json.loads(answer[1]).get("screens")
    except (ValueError, AttributeError):
        return None
    return count if isinstance(count, int) and count >= 0 else None


def session_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The command's environment: no notify socket, and the unit's own runtime directory
    (systemd's ``RUNTIME_DIRECTORY``) as ``XDG_RUNTIME_DIR``, where cage makes its Wayland
    socket. logind's /run/user/<uid> is removed when the user's last session ends and made
    again for the next one, racing the restarted session: on the twin cage then found no
    place for its socket ("Unable to open Wayland socket") or Chromium lost it."""
    env = child_environment(environ)
    if environ.get("RUNTIME_DIRECTORY"):
        env["XDG_RUNTIME_DIR"] = environ["RUNTIME_DIRECTORY"].split(":")[0]
    return env


def terminal_hung_up(fd: int = 0) -> bool | None:
    """Whether the controlling terminal on ``fd`` was hung up (a hung-up terminal's ioctls fail
    with EIO); None when ``fd`` is not this process's controlling terminal."""
    try:
        os.tcgetpgrp(fd)
    except OSError as err:
        return True if err.errno == errno.EIO else None
    return False


def exit_status(returncode: int) -> int:
    """A child's return code as a shell reports it: a signal N is 128+N."""
    return 128 - returncode if returncode < 0 else returncode


class PageState:
    """What :func:`_follow_page` tells the session loop: the page settled (it answered, or the
    ready deadline passed), and the page answers now though the session started without it."""

    def __init__(self) -> None:
        self.answering = False
        self.settled = asyncio.Event()
        self.started_unanswered = False
        self.answers_now = asyncio.Event()
        #: the page has been open on the screen in this session (set by :func:`_watch_screen`)
        self.shown = False


async def run_session(
    argv: list[str],
    *,
    url: str,
    ready_timeout_s: float,
    probe_every_s: float,
    notifier: Notifier,
    blank_timeout_s: float = 0.0,
) -> int:
    """Run ``argv`` until it ends or a signal stops us; the exit status to leave with.

    The command starts once the page answers (or at the ready deadline): Chromium's first load
    is then the page, not an error page. On the twin a Chromium started before the register
    answered stayed white (its network service restarted during that first load, and the page
    never came). A session that had to start without the page is started again, once, when
    the page answers. With ``blank_timeout_s`` a session whose page is not open on the screen
    for that long (:func:`_watch_screen`) is started again."""
    activate_own_vt()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stop_on, signum, stop)
    loop.add_signal_handler(signal.SIGHUP, _hangup)
    page = PageState()
    stopping = asyncio.ensure_future(stop.wait())
    watchdog = asyncio.ensure_future(notifier.run_watchdog())
    follow = asyncio.ensure_future(
        _follow_page(url, ready_timeout_s, probe_every_s, notifier, page)
    )
    try:
        settled = asyncio.ensure_future(page.settled.wait())
        await asyncio.wait([settled, stopping], return_when=asyncio.FIRST_COMPLETED)
        settled.cancel()
        if stopping.done():
            notifier.stopping(status="stopping the kiosk session")
            return 0
        backoff = 1
        blank_restarts = 0
        while True:
            page.started_unanswered = not page.answering
            page.answers_now.clear()
            page.shown = False
            child = await _start(argv)
            ended = asyncio.ensure_future(child.wait())
            again = asyncio.ensure_future(page.answers_now.wait())
            waits: set[asyncio.Future[Any]] = {ended, stopping, again}
            blank: asyncio.Future[float] | None = None
            if blank_timeout_s > 0:
                blank = asyncio.ensure_future(
                    _watch_screen(url, blank_timeout_s * backoff, probe_every_s, page)
                )
                waits.add(blank)
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            again.cancel()
            if blank is not None:
                blank.cancel()
            if page.shown:
                backoff = 1
            if ended.done() or stopping.done():
                break
            if blank is not None and blank.done() and not blank.cancelled():
                blank_restarts += 1
                text = (
                    f"kiosk page {url} answers but was not open on the screen for"
                    f" {blank.result():.0f} s: the screen is blank or shows another page;"
                    f" starting the session again ({blank_restarts} so far)"
                )
                log.warning(
                    "%s. If it keeps happening, read Chromium's lines above in this journal"
                    " (a crashed network or GPU process) and the register's",
                    text,
                )
                notifier.status(text)
                backoff = min(backoff * 2, BLANK_BACKOFF_MAX)
            else:
                log.info(
                    "kiosk page %s answers now; the session started before it did: starting it"
                    " again so it shows the page",
                    url,
                )
            page.started_unanswered = False
            await _end(child, ended)
    finally:
        follow.cancel()
        watchdog.cancel()
        stopping.cancel()
    if not ended.done():
        notifier.stopping(status="stopping the kiosk session")
        returncode = await _end(child, ended)
        # SIGHUP too: when the machine stops, logind's session scope sends SIGTERM and SIGHUP
        stopped = (0, -signal.SIGTERM, -signal.SIGHUP)
        return 0 if returncode in stopped else exit_status(returncode)
    returncode = ended.result()
    log.warning("kiosk session ended (%s); systemd starts it again", exit_status(returncode))
    return exit_status(returncode)  # Restart=always brings the session back whatever it was


async def _start(argv: list[str]) -> asyncio.subprocess.Process:
    # its own session: no controlling terminal, so no hangup of the wrapper's reaches it
    child = await asyncio.create_subprocess_exec(
        *argv, env=session_environment(os.environ), start_new_session=True
    )
    log.info("kiosk session started (pid %d): %s", child.pid, " ".join(argv))
    return child


async def _end(child: asyncio.subprocess.Process, ended: asyncio.Future[int]) -> int:
    """SIGTERM to the command (cage stops Chromium and itself) and its end awaited; systemd's
    TimeoutStopSec= bounds a stop, then kills what is left."""
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(signal.SIGTERM)
    return await ended


def _stop_on(signum: int, stop: asyncio.Event) -> None:
    log.info("received %s: stopping the kiosk session", signal.Signals(signum).name)
    stop.set()


def _hangup() -> None:
    hung_up = terminal_hung_up()
    log.warning(
        "received SIGHUP (%s); the kiosk session goes on",
        "its terminal was hung up"
        if hung_up
        else "its terminal is up: not a hangup"
        if hung_up is False
        else "it has no controlling terminal",
    )


async def _watch_screen(url: str, timeout_s: float, every_s: float, page: PageState) -> float:
    """Return (only) once the page has not been open on the screen for ``timeout_s`` while the
    register answered: the seconds it was not. While the register does not answer, or does not
    say how many pages are open, nothing is judged (the page reconnects its WebSocket within a
    second of the register coming back)."""
    loop = asyncio.get_running_loop()
    started = since = loop.time()
    every_s = min(every_s, max(timeout_s / 4, 0.05))
    while True:
        await asyncio.sleep(every_s)
        count = await open_screens(url)
        now = loop.time()
        if count is None or not page.answering:
            since = now
        elif count > 0:
            if not page.shown:
                log.info(
                    "kiosk page %s open on the screen, %.0f s after the session started",
                    url,
                    now - started,
                )
            page.shown = True
            since = now
        elif now - since >= timeout_s:
            return now - since


async def _follow_page(
    url: str, ready_timeout_s: float, probe_every_s: float, notifier: Notifier, page: PageState
) -> None:
    """READY=1 when the page first answers (or at the deadline), then STATUS as it changes;
    ``page`` tells the session loop."""
    deadline = asyncio.get_running_loop().time() + ready_timeout_s
    answering: bool | None = None
    ready = False
    while True:
        now_answering = await page_answers(url)
        if now_answering != answering:
            answering = page.answering = now_answering
            text = (
                f"kiosk page {url} answering"
                if answering
                else f"kiosk page {url} not answering (the register is starting or down)"
            )
            log.info("%s", text)
            if ready:
                notifier.status(text)
            if answering and page.started_unanswered:
                page.answers_now.set()
        if not ready and (answering or asyncio.get_running_loop().time() >= deadline):
            ready = True
            page.settled.set()
            notifier.ready(
                status=f"kiosk page {url} answering"
                if answering
                else f"kiosk up; page {url} not answering after {ready_timeout_s:g} s"
            )
        waiting = ready and not page.started_unanswered
        await asyncio.sleep(probe_every_s if waiting else min(0.5, probe_every_s))


def main(argv: list[str] | None = None) -> int:
    """Parse, run, return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m edge.agent.kiosk_session",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", required=True, help="the register's kiosk page")
    parser.add_argument(
        "--ready-timeout-s",
        type=float,
        default=60.0,
        help="READY=1 at the latest after this many seconds, answering or not (default 60)",
    )
    parser.add_argument(
        "--probe-every-s",
        type=float,
        default=10.0,
        help="how often the page is probed once ready, for STATUS (default 10)",
    )
    parser.add_argument(
        "--blank-timeout-s",
        type=float,
        default=float(os.environ.get("KIOSK_BLANK_TIMEOUT_S", "120")),
        help="start the session again when the page answers but has not been open on the"
        " screen for this long; doubles after each such restart, up to 8 times; 0: never"
        " (default 120, or KIOSK_BLANK_TIMEOUT_S)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the session command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the session's command after --, e.g. -- /usr/bin/cage -d -- chromium")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(
        run_session(
            command,
            url=args.url,
            ready_timeout_s=args.ready_timeout_s,
            probe_every_s=args.probe_every_s,
            notifier=Notifier.from_environment(),
            blank_timeout_s=args.blank_timeout_s,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
