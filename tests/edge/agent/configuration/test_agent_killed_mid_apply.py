"""SIGKILL of the real agent while it applies a configuration: the old or the new, never a mix.

``python -m edge.agent`` runs its register on the test's Mosquitto (a test client plays the
control plane). Version 3 changes a live section (the store's name) and a restart section (the
cash rounding) at once; the agent is SIGKILLed at once after the publish, or just as it logged
the version applied (written, the register's restart under way, the state maybe not sent).
Then the applied file holds version 2 or version 3 whole (every section's hash that version's),
and once the agent is back (the retained document arrives again) the register runs version 3
and the state reports it with its hashes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from edge.agent.configuration.files import read_applied
from protocols.store_config import key_hashes, parse_store_config
from tests.edge.agent.agent_harness import control_plane
from tests.edge.agent.agent_process import AgentProcess
from tests.edge.agent.configuration.test_config_apply import (
    GUARD_S,
    Kiosk,
    Seen,
    appliance,  # noqa: F401 - the fixture
    publish,
    store_named,
)
from tests.harness.services import Mosquitto, wait_until
from tests.harness.store_config import store_config_doc

pytestmark = [pytest.mark.services, pytest.mark.slow]

V2 = store_config_doc()
V3 = store_config_doc(
    store={**V2["store"], "name": "Lindenhof Bakery & Café"},
    currency={"code": "CHF", "exponent": 2, "cash_increment_minor": 10},
)
KillPoint = Callable[[AgentProcess], Awaitable[None]]


async def at_once(_: AgentProcess) -> None:
    """Straight after the publish: the message on its way, or being validated."""


async def when_applied(app: AgentProcess) -> None:
    """As the agent logs version 3 applied: written, the register's restart begun."""
    await wait_until(
        lambda: "config 3 applied" in app.agent_log.read_text(),
        timeout=GUARD_S,
        interval=0.005,
        what="the agent applying version 3",
    )


def whole_version(data_dir: Path) -> int:
    """The version in the applied file, checked whole: every section's hash that version's."""
    found = read_applied(data_dir)
    assert found is not None
    wanted: dict[int, Any] = {2: V2, 3: V3}
    assert found.hashes == key_hashes(parse_store_config(wanted[found.version]))
    return found.version


@pytest.mark.parametrize(
    "kill_at",
    [pytest.param(at_once, id="at-once"), pytest.param(when_applied, id="when-applied")],
)
async def test_an_agent_killed_mid_apply_runs_the_old_or_the_new_never_a_mix(
    appliance: AgentProcess,  # noqa: F811 - the fixture
    mosquitto: Mosquitto,
    kill_at: KillPoint,
) -> None:
    kiosk = Kiosk(appliance.kiosk_port)
    device = appliance.device_id
    async with asyncio.timeout(GUARD_S), control_plane(mosquitto.url, device) as cp:
        seen = Seen(cp)
        await publish(mosquitto.url, device, 2, V2)
        await seen.state_at(2)
        await wait_until(lambda: store_named(kiosk, "Lindenhof Bakery"), timeout=GUARD_S)

        await publish(mosquitto.url, device, 3, V3)
        await kill_at(appliance)
        assert appliance.process is not None
        appliance.process.kill()  # SIGKILL: no cleanup, as a power cut or the OOM killer
        appliance.process.wait()
        on_disk = whole_version(appliance.data_dir)

        appliance.start()
        state = await seen.state_at(3)
        await wait_until(
            lambda: store_named(kiosk, "Lindenhof Bakery & Café"),
            timeout=GUARD_S,
            what="the register running version 3",
        )
    assert on_disk in {2, 3}
    assert whole_version(appliance.data_dir) == 3
    assert state.config_hashes == key_hashes(parse_store_config(V3))
    applied = json.loads((appliance.data_dir / "config" / "applied.json").read_text())
    assert applied["doc"]["currency"]["cash_increment_minor"] == 10
