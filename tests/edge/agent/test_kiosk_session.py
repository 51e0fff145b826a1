"""The kiosk session under systemd's Type=notify (edge/agent/kiosk_session.py), as a real process.

A datagram socket plays systemd's notify socket; a small HTTP server plays the register's kiosk
page (it first drops connections unanswered, as a port nobody serves yet would); a sleeping
Python stands for cage running Chromium.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import psutil

from edge.agent.kiosk_session import activate_own_vt
from tests.harness.services import free_port, wait_until

ROOT = Path(__file__).resolve().parents[3]
GUARD_S = 60  # only against hangs
SESSION = [sys.executable, "-c", "import time; time.sleep(600)"]  # stands for cage + Chromium


class FakeSystemd:
    """The unit's notify socket: every line the session said."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.heard: list[str] = []

    def listen(self) -> list[str]:
        while True:
            try:
                self.heard.extend(self.sock.recv(4096).decode().splitlines())
            except BlockingIOError:
                return self.heard


@contextmanager
def notify_socket(path: Path) -> Iterator[FakeSystemd]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        yield FakeSystemd(sock)


def unit_environment(address: Path, *, watchdog_usec: int) -> dict[str, str]:
    """What systemd gives the unit's main process: its notify socket and watchdog interval."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))}
    return env | {
        "NOTIFY_SOCKET": str(address),
        "WATCHDOG_USEC": str(watchdog_usec),
        "PYTHONPATH": str(ROOT),
    }


def start(
    url: str, address: Path, *more: str, session: list[str] = SESSION
) -> subprocess.Popen[bytes]:
    env = unit_environment(address, watchdog_usec=1_000_000)
    return subprocess.Popen(
        [sys.executable, "-m", "edge.agent.kiosk_session", "--url", url, *more, "--", *session],
        env=env,
        cwd=ROOT,
    )


def session_pid(wrapper: subprocess.Popen[bytes]) -> int | None:
    children = psutil.Process(wrapper.pid).children()
    return children[0].pid if children else None


async def test_ready_when_the_page_answers_then_watched_and_ended_with_the_session(
    tmp_path: Path,
) -> None:
    port = free_port()
    probes: list[bool] = []  # True: answered

    async def page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if len(probes) < 2:  # the register is still starting
            probes.append(False)
        else:
            probes.append(True)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(page, "127.0.0.1", port)
    with notify_socket(tmp_path / "notify.sock") as systemd:
        wrapper = start(f"http://127.0.0.1:{port}/", tmp_path / "notify.sock")
        try:
            async with asyncio.timeout(GUARD_S):
                await wait_until(lambda: len(probes) >= 2, timeout=GUARD_S, what="two probes")
                before_answer = list(systemd.listen())
                await wait_until(
                    lambda: "READY=1" in systemd.listen(), timeout=GUARD_S, what="READY=1"
                )
                await wait_until(
                    lambda: systemd.listen().count("WATCHDOG=1") >= 2,
                    timeout=GUARD_S,
                    what="watchdog pings",
                )
                session = session_pid(wrapper)
                assert session is not None
                environ = psutil.Process(session).environ()
                os.kill(session, signal.SIGKILL)  # cage died
                code = await asyncio.to_thread(wrapper.wait, GUARD_S)
        finally:
            if wrapper.poll() is None:
                wrapper.kill()
            server.close()
    assert "READY=1" not in before_answer  # not ready while the page did not answer
    assert probes[:3] == [False, False, True]
    assert any(
        line.startswith("STATUS=kiosk page") and "answering" in line for line in systemd.heard
    )
    assert code == 128 + signal.SIGKILL  # the unit sees the session's end: Restart=always
    assert "STOPPING=1" not in systemd.heard  # a crash, not a stop
    assert not [name for name in environ if name.startswith(("NOTIFY_SOCKET", "WATCHDOG_"))]


async def test_a_session_started_before_the_page_answered_starts_again_when_it_does(
    tmp_path: Path,
) -> None:
    """On the twin a Chromium that started before the register answered stayed white: the
    session waits for the page (here 1 s at most), and one that had to start without it is
    started again, once, when the page answers; the unit sees no restart."""
    port = free_port()
    with notify_socket(tmp_path / "notify.sock") as systemd:
        wrapper = start(
            f"http://127.0.0.1:{port}/", tmp_path / "notify.sock", "--ready-timeout-s", "1"
        )
        server = None
        try:
            async with asyncio.timeout(GUARD_S):
                await wait_until(
                    lambda: "READY=1" in systemd.listen(), timeout=GUARD_S, what="READY=1"
                )
                await wait_until(lambda: session_pid(wrapper), timeout=GUARD_S, what="session")
                first = session_pid(wrapper)

                async def page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                    await reader.readuntil(b"\r\n\r\n")
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
                    writer.close()

                server = await asyncio.start_server(page, "127.0.0.1", port)  # the register is up
                await wait_until(
                    lambda: session_pid(wrapper) not in (None, first),
                    timeout=GUARD_S,
                    what="the session started again",
                )
                second = session_pid(wrapper)
                await asyncio.sleep(1.5)  # and only once
                assert session_pid(wrapper) == second
                assert wrapper.poll() is None
                assert first is not None
                assert not psutil.pid_exists(first)
                wrapper.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(wrapper.wait, GUARD_S)
        finally:
            if wrapper.poll() is None:
                wrapper.kill()
            if server is not None:
                server.close()
        systemd.listen()
    assert code == 0
    assert systemd.heard.count("READY=1") == 1
    assert any("not answering after 1 s" in line for line in systemd.heard)


class Register:
    """The register's kiosk page (always answering) and its count of open pages."""

    def __init__(self, screens: int | None) -> None:
        self.screens = screens  # None: an app release that does not count them (404)
        self.server: asyncio.Server | None = None
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if request.startswith(b"GET /kiosk/screens "):
            if self.screens is None:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            else:
                body = json.dumps({"screens": self.screens}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> Register:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()


def start_watching(register: Register, address: Path, log: BinaryIO) -> subprocess.Popen[bytes]:
    """The wrapper with a 1 s blank timeout, probing often, its log to ``log``."""
    env = unit_environment(address, watchdog_usec=1_000_000)
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "edge.agent.kiosk_session", "--url", register.url),
            *("--blank-timeout-s", "1", "--probe-every-s", "0.2", "--", *SESSION),
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=log,
    )


async def test_a_browser_that_never_opens_the_page_is_started_again_until_it_does(
    tmp_path: Path,
) -> None:
    """The twin's white screen: Chromium ran, the register answered, and no page was ever
    open. The session is started again after the blank timeout (1 s here), the next wait twice
    as long; once the page is open (the register counts its WebSocket) the session is kept."""
    journal = tmp_path / "journal"
    async with Register(screens=0) as register:
        with notify_socket(tmp_path / "notify.sock") as systemd, journal.open("wb") as log:
            wrapper = start_watching(register, tmp_path / "notify.sock", log)
            try:
                async with asyncio.timeout(GUARD_S):
                    await wait_until(lambda: session_pid(wrapper), timeout=GUARD_S, what="session")
                    first = session_pid(wrapper)
                    await wait_until(
                        lambda: session_pid(wrapper) not in (None, first),
                        timeout=GUARD_S,
                        what="the blank session started again",
                    )
                    second = session_pid(wrapper)
                    await wait_until(
                        lambda: session_pid(wrapper) not in (None, second),
                        timeout=GUARD_S,
                        what="the blank session started again, twice",
                    )
                    third = session_pid(wrapper)
                    register.screens = 1  # this Chromium opened the page
                    await wait_until(
                        lambda: "open on the screen" in journal.read_text(),
                        timeout=GUARD_S,
                        what="the page seen open",
                    )
                    await asyncio.sleep(3 * 1.5)  # past the next waits (4 s): kept
                    assert session_pid(wrapper) == third
                    assert wrapper.poll() is None
                    wrapper.send_signal(signal.SIGTERM)
                    code = await asyncio.to_thread(wrapper.wait, GUARD_S)
            finally:
                if wrapper.poll() is None:
                    wrapper.kill()
            systemd.listen()
    text = journal.read_text()
    assert code == 0
    assert first is not None
    assert second is not None
    assert not psutil.pid_exists(first)
    assert not psutil.pid_exists(second)
    waits = [float(m) for m in re.findall(r"was not open on the screen for (\d+) s", text)]
    assert len(waits) == 2, text
    assert waits[0] >= 1
    assert waits[1] >= 2
    assert "starting the session again (2 so far)" in text
    assert any("was not open on the screen" in line for line in systemd.heard)
    assert systemd.heard.count("READY=1") == 1  # the unit saw no restart


async def test_a_register_that_does_not_count_its_pages_is_not_judged(tmp_path: Path) -> None:
    """An older app release in the register's slot has no /kiosk/screens (404): the session is
    never restarted for a blank screen it cannot see."""
    journal = tmp_path / "journal"
    async with Register(screens=None) as register:
        with notify_socket(tmp_path / "notify.sock") as systemd, journal.open("wb") as log:
            wrapper = start_watching(register, tmp_path / "notify.sock", log)
            try:
                async with asyncio.timeout(GUARD_S):
                    await wait_until(
                        lambda: "READY=1" in systemd.listen(), timeout=GUARD_S, what="READY=1"
                    )
                    await wait_until(lambda: session_pid(wrapper), timeout=GUARD_S, what="session")
                    first = session_pid(wrapper)
                    await asyncio.sleep(4)  # four blank timeouts
                    assert session_pid(wrapper) == first
                    wrapper.send_signal(signal.SIGTERM)
                    code = await asyncio.to_thread(wrapper.wait, GUARD_S)
            finally:
                if wrapper.poll() is None:
                    wrapper.kill()
    assert code == 0
    assert "was not open on the screen" not in journal.read_text()


async def test_sigterm_stops_the_session_in_order(tmp_path: Path) -> None:
    with notify_socket(tmp_path / "notify.sock") as systemd:
        # nothing serves the page: ready at the deadline anyway, saying so
        wrapper = start(
            f"http://127.0.0.1:{free_port()}/", tmp_path / "notify.sock", "--ready-timeout-s", "1"
        )
        try:
            async with asyncio.timeout(GUARD_S):
                await wait_until(
                    lambda: "READY=1" in systemd.listen(), timeout=GUARD_S, what="READY=1"
                )
                await wait_until(lambda: session_pid(wrapper), timeout=GUARD_S, what="session")
                session = session_pid(wrapper)
                assert session is not None
                wrapper.send_signal(signal.SIGTERM)  # systemctl stop
                code = await asyncio.to_thread(wrapper.wait, GUARD_S)
        finally:
            if wrapper.poll() is None:
                wrapper.kill()
        systemd.listen()
    assert code == 0
    assert "STOPPING=1" in systemd.heard
    assert any("not answering after 1 s" in line for line in systemd.heard)
    assert not psutil.pid_exists(session)


async def test_a_session_ended_by_sighup_while_stopping_is_a_clean_stop(tmp_path: Path) -> None:
    """When the machine stops, logind's session scope sends SIGTERM and SIGHUP to the kiosk's
    processes; cage ending by the SIGHUP is the stop the unit asked for, not a failure."""
    # stands for cage when the scope's SIGHUP comes right after the wrapper's SIGTERM
    hung_up_on_term = [
        sys.executable,
        "-c",
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGHUP))\n"
        "time.sleep(600)",
    ]
    with notify_socket(tmp_path / "notify.sock") as systemd:
        wrapper = start(
            f"http://127.0.0.1:{free_port()}/",
            tmp_path / "notify.sock",
            "--ready-timeout-s",
            "1",
            session=hung_up_on_term,
        )
        try:
            async with asyncio.timeout(GUARD_S):
                await wait_until(
                    lambda: "READY=1" in systemd.listen(), timeout=GUARD_S, what="READY=1"
                )
                await wait_until(lambda: session_pid(wrapper), timeout=GUARD_S, what="session")
                wrapper.send_signal(signal.SIGTERM)  # systemctl stop, or the machine stopping
                code = await asyncio.to_thread(wrapper.wait, GUARD_S)
        finally:
            if wrapper.poll() is None:
                wrapper.kill()
    assert code == 0  # not 129: the unit is stopped, not failed


#: what systemd does for the unit (``TTYPath=``, ``StandardInput=tty``) before it runs the wrapper
#: as this process: a session leader whose controlling terminal is its standard input
ON_THE_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0);"
    " os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def start_on_terminal(
    url: str, address: Path, terminal: int, log: BinaryIO
) -> subprocess.Popen[bytes]:
    """The wrapper in a session of its own with ``terminal`` as its controlling terminal."""
    env = unit_environment(address, watchdog_usec=400_000)
    return subprocess.Popen(
        [
            *(sys.executable, "-c", ON_THE_TERMINAL, "-m", "edge.agent.kiosk_session"),
            *("--url", url, "--ready-timeout-s", "1", "--", *SESSION),
        ],
        env=env,
        cwd=ROOT,
        stdin=terminal,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )


async def test_a_hangup_of_the_terminal_ends_nothing_and_is_logged(tmp_path: Path) -> None:
    """On the twin every session ended 5-12 s after its start, "deactivated successfully" and
    without a word from the wrapper: tty7 was hung up and the SIGHUP killed it. Here a pty
    stands for tty7, its primary side closed for the hangup."""
    primary, secondary = os.openpty()
    journal = tmp_path / "journal"
    url = f"http://127.0.0.1:{free_port()}/"
    with notify_socket(tmp_path / "notify.sock") as systemd, journal.open("wb") as log:
        wrapper = start_on_terminal(url, tmp_path / "notify.sock", secondary, log)
        os.close(secondary)
        try:
            async with asyncio.timeout(GUARD_S):
                await wait_until(
                    lambda: "READY=1" in systemd.listen(), timeout=GUARD_S, what="READY=1"
                )
                await wait_until(lambda: session_pid(wrapper), timeout=GUARD_S, what="session")
                session = session_pid(wrapper)
                assert session is not None
                # the session command in a session of its own: not on the wrapper's terminal
                assert os.getsid(wrapper.pid) == wrapper.pid
                assert os.getsid(session) == session

                os.kill(wrapper.pid, signal.SIGHUP)  # someone's kill -HUP: the terminal is up
                await wait_until(
                    lambda: "its terminal is up" in journal.read_text(),
                    timeout=GUARD_S,
                    what="the SIGHUP logged",
                )
                os.close(primary)  # the hangup: SIGHUP to the terminal's session
                primary = -1
                await wait_until(
                    lambda: "its terminal was hung up" in journal.read_text(),
                    timeout=GUARD_S,
                    what="the hangup logged",
                )
                pings = systemd.listen().count("WATCHDOG=1")
                await wait_until(
                    lambda: systemd.listen().count("WATCHDOG=1") >= pings + 2,
                    timeout=GUARD_S,
                    what="watchdog pings after the hangup",
                )
                assert wrapper.poll() is None  # the wrapper and the session go on
                assert psutil.Process(session).is_running()
                wrapper.send_signal(signal.SIGTERM)  # systemctl stop
                code = await asyncio.to_thread(wrapper.wait, GUARD_S)
        finally:
            if primary >= 0:
                os.close(primary)
            if wrapper.poll() is None:
                wrapper.kill()
    text = journal.read_text()
    assert code == 0
    assert "received SIGHUP (its terminal is up: not a hangup); the kiosk session goes on" in text
    assert "received SIGHUP (its terminal was hung up); the kiosk session goes on" in text
    assert "received SIGTERM: stopping the kiosk session" in text
    assert "kiosk session ended" not in text  # stopped, not crashed
    assert not psutil.pid_exists(session)


def test_a_session_command_is_required() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edge.agent.kiosk_session", "--url", "http://127.0.0.1:1/"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "give the session's command after --" in done.stderr


def test_a_session_not_on_a_virtual_terminal_switches_no_console() -> None:
    """Only a VT (/dev/ttyN) is brought to the front; a pseudo-terminal or a pipe is left be."""
    primary, secondary = os.openpty()
    readable, writable = os.pipe()
    try:
        assert activate_own_vt(secondary) is None
        assert activate_own_vt(readable) is None
    finally:
        for fd in (primary, secondary, readable, writable):
            os.close(fd)
