"""The sd_notify client against a real datagram socket, bound as systemd binds NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.agent.notify import NOTIFY_FAILURES, Notifier, child_environment


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A service manager's end: a bound AF_UNIX datagram socket and its address."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(10)
        yield str(path), sock


@pytest.fixture
def abstract_manager() -> Iterator[tuple[str, socket.socket]]:
    """The same in Linux's abstract namespace (``NOTIFY_SOCKET=@name``)."""
    name = f"storefleet-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        yield "@" + name, sock


def _received(sock: socket.socket) -> bytes:
    return sock.recv(4096)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        pytest.param(lambda n: n.ready(), b"READY=1", id="ready"),
        pytest.param(
            lambda n: n.ready("selling"), b"READY=1\nSTATUS=selling", id="ready-with-status"
        ),
        pytest.param(lambda n: n.watchdog(), b"WATCHDOG=1", id="watchdog"),
        pytest.param(lambda n: n.stopping(), b"STOPPING=1", id="stopping"),
        pytest.param(
            lambda n: n.status("register down\nREADY=1"),
            b"STATUS=register down READY=1",
            id="a-newline-cannot-inject-an-assignment",
        ),
    ],
)
def test_each_notification_is_one_datagram_of_assignments(
    manager: tuple[str, socket.socket], call: Callable[[Notifier], bool], expected: bytes
) -> None:
    address, sock = manager
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": address})

    assert call(notifier) is True
    assert _received(sock) == expected


def test_the_abstract_namespace_is_reached(abstract_manager: tuple[str, socket.socket]) -> None:
    address, sock = abstract_manager

    assert Notifier.from_environment({"NOTIFY_SOCKET": address}).ready() is True
    assert _received(sock) == b"READY=1"


@pytest.mark.parametrize(
    ("environ", "enabled", "watchdog_s"),
    [
        pytest.param({}, False, None, id="not-under-systemd"),
        pytest.param({"NOTIFY_SOCKET": "relative.sock"}, False, None, id="relative-path-ignored"),
        pytest.param(
            {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "{pid}"},
            True,
            20.0,
            id="watchdog-for-this-process",
        ),
        pytest.param(
            {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "20000000"},
            True,
            20.0,
            id="watchdog-without-pid",
        ),
        pytest.param(
            {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"},
            True,
            None,
            id="watchdog-meant-for-another-process",
        ),
        pytest.param(
            {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "soon"}, True, None, id="bad-interval"
        ),
    ],
)
def test_the_environment_says_whether_and_how_often(
    environ: dict[str, str], enabled: bool, watchdog_s: float | None
) -> None:
    env = {key: value.format(pid=os.getpid()) for key, value in environ.items()}

    notifier = Notifier.from_environment(env)

    assert (notifier.enabled, notifier.watchdog_s) == (enabled, watchdog_s)


def test_without_a_manager_nothing_is_sent_and_nothing_fails() -> None:
    notifier = Notifier.from_environment({})

    assert (notifier.ready(), notifier.watchdog(), notifier.stopping()) == (False, False, False)


def test_a_vanished_socket_is_counted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(address=str(tmp_path / "gone.sock"))
    before = NOTIFY_FAILURES.labels(state="WATCHDOG")._value.get()

    with caplog.at_level(logging.WARNING, logger="edge.agent.notify"):
        results = [notifier.watchdog(), notifier.watchdog()]

    assert results == [False, False]
    assert NOTIFY_FAILURES.labels(state="WATCHDOG")._value.get() == before + 2
    assert len(caplog.records) == 1
    assert "check NOTIFY_SOCKET" in caplog.records[0].getMessage()


async def test_the_watchdog_is_fed_while_the_loop_runs(
    manager: tuple[str, socket.socket],
) -> None:
    address, sock = manager
    notifier = Notifier(address=address, watchdog_s=0.02)

    feeding = asyncio.create_task(notifier.run_watchdog())
    try:
        pings = [await asyncio.to_thread(_received, sock) for _ in range(3)]
    finally:
        feeding.cancel()
    assert pings == [b"WATCHDOG=1"] * 3


async def test_an_unwatched_agent_does_not_feed(manager: tuple[str, socket.socket]) -> None:
    address, sock = manager

    await Notifier(address=address, watchdog_s=None).run_watchdog()  # returns at once

    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)


def test_the_register_the_agent_starts_does_not_inherit_the_notify_socket() -> None:
    environ = {
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "WATCHDOG_USEC": "20000000",
        "WATCHDOG_PID": "42",
        "PATH": "/usr/bin",
    }

    assert child_environment(environ) == {"PATH": "/usr/bin"}
