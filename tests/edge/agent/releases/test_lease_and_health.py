"""The update lease over the real local socket, and the health window's verdict.

A register holding a lease (a sale open) holds the switch back until it lets go; an expired
lease, or one held longer than the agent allows, does not — that is logged and counted.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from control_plane.devices.state import PeripheralReport
from edge.agent.contract import Heartbeat, Hello, UpdateLease, encode_line
from edge.agent.register_link import RegisterLink
from edge.agent.releases.health import Baseline, judge, lease_blocks
from edge.agent.releases.manager import ReleaseManager
from edge.agent.settings import FleetAgentSettings
from edge.agent.supervisor import Supervisor, SupervisorSettings
from protocols.messages import DesiredRelease
from tests.harness.services import wait_until

GUARD_S = 20
DESIRE = DesiredRelease(
    version="9.0.0", url="http://127.0.0.1:1/b.sfb", sha256="a" * 64, signature="sig"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def overridden(why: str) -> float:
    value = REGISTRY.get_sample_value(
        "storefleet_agent_release_lease_overridden_total", {"why": why}
    )
    return value or 0.0


class FakeTill:
    """The register's end of the socket, speaking the contract (hello, then heartbeats)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def beat(self, lease: UpdateLease | None) -> None:
        self.writer.write(encode_line(Heartbeat(ts=now_ms(), ready=True, lease=lease)))
        await self.writer.drain()


@pytest.fixture
async def linked(tmp_path: Path) -> AsyncIterator[tuple[RegisterLink, FakeTill, Path]]:
    link = RegisterLink(path=tmp_path / "run" / "agent.sock")
    serving = asyncio.create_task(link.serve())
    await link.listening.wait()
    _, writer = await asyncio.open_unix_connection(str(link.path))
    writer.write(encode_line(Hello(pid=os.getpid(), release="1.0.0")))
    await writer.drain()
    await wait_until(lambda: link.connected, timeout=GUARD_S, what="hello")
    yield link, FakeTill(writer), tmp_path
    writer.close()
    serving.cancel()


def manager(link: RegisterLink, tmp_path: Path, *, lease_max_s: float) -> ReleaseManager:
    settings = FleetAgentSettings(
        device_id="reg-lease", data_dir=tmp_path / "data", release_lease_max_s=lease_max_s
    )
    supervisor = Supervisor(
        argv=["true"],
        env={},
        log_path=tmp_path / "r.log",
        link=link,
        settings=SupervisorSettings(),
        emit=lambda kind, body: None,
    )
    return ReleaseManager(
        settings=settings,
        supervisor=supervisor,
        link=link,
        emit=lambda kind, body: None,
        http=lambda: (None, True),
        image_version="1.0.0",
        base_env={},
    )


async def test_a_held_lease_holds_the_switch_until_the_sale_closes(
    linked: tuple[RegisterLink, FakeTill, Path],
) -> None:
    link, till, tmp_path = linked
    releases = manager(link, tmp_path, lease_max_s=3600)
    lease = UpdateLease(owner="till-1", reason="sale s-1 in payment", expires_at=now_ms() + 600_000)
    await till.beat(lease)
    await wait_until(
        lambda: link.heartbeat is not None and link.heartbeat.lease == lease,
        timeout=GUARD_S,
        what="the lease",
    )
    waiting = asyncio.create_task(releases._wait_for_lease(DESIRE))
    beats = link.beats
    await till.beat(lease)  # still open, a heartbeat later
    await wait_until(lambda: link.beats > beats, timeout=GUARD_S, what="the next heartbeat")
    held_while_open = not waiting.done()
    shown = releases.health()
    assert shown["detail"]["lease_owner"] == "till-1"  # visible in the state
    assert shown["detail"]["lease_reason"] == "sale s-1 in payment"
    # and in the shape the cloud stores: a nested lease object was refused at ingest
    PeripheralReport.model_validate(shown)

    await till.beat(None)  # the sale closed
    async with asyncio.timeout(GUARD_S):
        await waiting

    assert held_while_open
    assert releases.lease_overrides == 0


async def test_an_expired_lease_does_not_block_and_is_counted(
    linked: tuple[RegisterLink, FakeTill, Path],
) -> None:
    link, till, tmp_path = linked
    releases = manager(link, tmp_path, lease_max_s=3600)
    before = overridden("expired")
    await till.beat(UpdateLease(owner="till-1", reason="cart open", expires_at=now_ms() - 1))
    await wait_until(
        lambda: link.heartbeat is not None and link.heartbeat.lease is not None,
        timeout=GUARD_S,
        what="the lease",
    )

    async with asyncio.timeout(GUARD_S):
        await releases._wait_for_lease(DESIRE)

    assert releases.lease_overrides == 1
    assert overridden("expired") == before + 1


async def test_a_lease_never_blocks_longer_than_the_agent_allows(
    linked: tuple[RegisterLink, FakeTill, Path], caplog: pytest.LogCaptureFixture
) -> None:
    link, till, tmp_path = linked
    releases = manager(link, tmp_path, lease_max_s=0.3)
    before = overridden("too_long")
    await till.beat(UpdateLease(owner="till-1", reason="cart open", expires_at=now_ms() + 10**9))
    await wait_until(
        lambda: link.heartbeat is not None and link.heartbeat.lease is not None,
        timeout=GUARD_S,
        what="the lease",
    )

    async with asyncio.timeout(GUARD_S):
        await releases._wait_for_lease(DESIRE)

    assert overridden("too_long") == before + 1
    assert "a lease never blocks an update forever" in caplog.text


@pytest.mark.parametrize(
    ("lease", "waited_s", "verdict"),
    [
        pytest.param(None, 0.0, "free", id="no-lease"),
        pytest.param(UpdateLease(owner="t", reason="r", expires_at=2_000), 1.0, "held", id="held"),
        pytest.param(
            UpdateLease(owner="t", reason="r", expires_at=1_000), 0.0, "expired", id="exp"
        ),
        pytest.param(
            UpdateLease(owner="t", reason="r", expires_at=9_000), 60.0, "too_long", id="max"
        ),
    ],
)
def test_lease_verdicts(lease: UpdateLease | None, waited_s: float, verdict: str) -> None:
    assert lease_blocks(lease, now_ms=1_000, waited_s=waited_s, max_s=60.0) == verdict


#: Peripherals as the register reports them: by the store's device names, with their kind.
PRINTER = {"kind": "printer", "connected": True, "error": None}
SCANNER = {"kind": "scanner", "connected": True, "error": None}


def beat(**changes: object) -> Heartbeat:
    fields: dict[str, object] = {
        "ts": 1,
        "ready": True,
        "peripherals": {"receipt-printer": PRINTER, "hand-scanner": SCANNER},
    } | changes
    return Heartbeat.model_validate(fields)


BASELINE = Baseline.of(beat())


@pytest.mark.parametrize(
    ("after", "why"),
    [
        pytest.param(None, "has not reported", id="silent"),
        pytest.param(beat(ready=False), "not ready", id="not-ready"),
        pytest.param(beat(peripherals={"hand-scanner": SCANNER}), "receipt-printer", id="printer"),
        pytest.param(
            beat(
                peripherals={
                    "receipt-printer": PRINTER | {"connected": False, "error": "unreachable"},
                    "hand-scanner": SCANNER,
                }
            ),
            "receipt-printer worked before the switch",
            id="printer-unreachable",
        ),
        pytest.param(
            beat(
                peripherals={
                    "receipt-printer": PRINTER | {"error": "paper out"},
                    "hand-scanner": SCANNER,
                }
            ),
            "receipt-printer",
            id="printer-error",
        ),
        pytest.param(
            beat(peripherals={"receipt-printer": PRINTER}), "hand-scanner", id="scanner-gone"
        ),
        pytest.param(beat(replication={"lag_ms": 600_000}), "lags", id="lag"),
        pytest.param(beat(replication={"refusal": "chain broken"}), "refuses", id="refused"),
    ],
)
def test_an_unhealthy_register_fails_the_window_saying_why(
    after: Heartbeat | None, why: str
) -> None:
    verdict = judge(after, baseline=BASELINE, max_lag_ms=300_000)

    assert verdict is not None
    assert why in verdict


def test_a_ready_register_with_its_peripherals_and_a_short_lag_passes() -> None:
    assert judge(beat(replication={"lag_ms": 2_000}), baseline=BASELINE, max_lag_ms=300_000) is None


def test_the_watch_is_by_kind_whatever_the_store_names_its_devices() -> None:
    named = beat(peripherals={"till-3-epson": PRINTER, "door": {"kind": "rfid", "connected": True}})

    assert Baseline.of(named).peripherals_up == frozenset({"till-3-epson"})


def test_a_peripheral_the_store_lacked_before_is_not_asked_for() -> None:
    without_printer = Baseline.of(beat(peripherals={"hand-scanner": SCANNER}))

    assert without_printer.peripherals_up == frozenset({"hand-scanner"})
    assert (
        judge(
            beat(peripherals={"hand-scanner": SCANNER}),
            baseline=without_printer,
            max_lag_ms=1,
        )
        is None
    )
