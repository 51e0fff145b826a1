"""A release that starts but breaks printing is caught by the agent's health window (issue 11).

The real agent process supervises a register with the simulated store's peripherals (a network
receipt printer speaking ESC/POS on loopback) and a simulated cashier ringing sales, so receipts
print before the switch. The release is this commit's wheel whose printer service can no longer
reach the printer: the register starts, says hello and sells, but its receipts do not print. The
agent sees the printer that worked before the switch fail in the window, reverts to the old
register (which prints and sells again) and reports ``reverted`` with that reason — a failure for
the rollout's gate (``test_rollout_flow``: a reverting canary halts the rollout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.harness.services import Mosquitto, wait_until

from ..agent_harness import control_plane
from ..agent_process import AgentProcess
from .bundles import BundleServer, Releases, desire, serving
from .on_appliance import GUARD_S, progress_until_final, publish, selling, selling_again, slots

pytestmark = [pytest.mark.services, pytest.mark.slow]


async def printing(app: AgentProcess) -> bool:
    health = await app.healthz()
    if health is None:
        return False
    printers = [h for h in health["peripherals"].values() if h.get("kind") == "printer"]
    return bool(printers) and all(h["connected"] and not h["error"] for h in printers)


async def test_a_release_that_breaks_printing_is_reverted_by_the_health_window(
    mosquitto: Mosquitto, releases: Releases, new_appliance: Callable[..., AgentProcess]
) -> None:
    # receipts print several times a second: a longer window sees them fail
    app = new_appliance(peripherals=True, health_window_s=8.0)
    device_id = app.device_id
    broken = releases.printer_broken
    server = BundleServer(files={broken.path.name: broken.path})
    app.start()
    try:
        async with (
            asyncio.timeout(GUARD_S),
            serving(server),
            control_plane(mosquitto.url, device_id) as cp,
        ):
            await wait_until(lambda: selling(app), timeout=GUARD_S, what="the register selling")
            await wait_until(lambda: printing(app), timeout=GUARD_S, what="receipts printing")
            await publish(cp, desire(broken, server.url))
            progress = await progress_until_final(cp, broken.manifest.version)
            assert progress[-1]["state"] == "reverted", progress[-1]  # not committed
            await wait_until(lambda: printing(app), timeout=GUARD_S, what="printing again")
            await selling_again(app)
    finally:
        app.stop()
    states = [p["state"] for p in progress]
    assert states[-2:] == ["confirming", "reverted"]
    assert "printer worked before the switch and do not now" in progress[-1]["detail"]
    state = slots(app)
    assert (state["active"], state["committed"], state["trying"]) == (None, None, None)
