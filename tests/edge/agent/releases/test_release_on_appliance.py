"""Releases on a real appliance: the real agent process, real Mosquitto, a real HTTP server.

A good release (its download cut once mid-body and resumed) ends committed in a slot with the
register running the new version; refused bundles leave the running register alone, each with
its reason; a release whose register cannot start is reverted and the old register sells again.
An agent SIGKILLed mid-download resumes the download when it is back; one SIGKILLed while the
new register is on trial goes back to the old one: either way the register it runs sells, and
the device reports success only for the release it runs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from edge.appliance import VERSION as IMAGE_VERSION
from protocols.messages import Event
from protocols.vocabulary import EventKind
from tests.harness.services import Mosquitto, wait_until

from ..agent_harness import ControlPlane, control_plane
from ..agent_process import AgentProcess
from .bundles import NEW_VERSION, BundleServer, Releases, desire, serving
from .on_appliance import (
    FINAL,
    GUARD_S,
    progress_until_final,
    publish,
    selling,
    selling_again,
    slots,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]
MakeAppliance = Callable[..., AgentProcess]


async def test_a_good_release_resumes_its_download_commits_and_runs_the_new_version(
    mosquitto: Mosquitto, releases: Releases, new_appliance: MakeAppliance
) -> None:
    app = new_appliance()
    device_id = app.device_id
    server = BundleServer(files={releases.good.path.name: releases.good.path})
    server.cut[releases.good.path.name] = 1  # the first response ends mid-body
    app.start()
    try:
        async with (
            asyncio.timeout(GUARD_S),
            serving(server),
            control_plane(mosquitto.url, device_id) as cp,
        ):
            await wait_until(lambda: selling(app), timeout=GUARD_S, what="the register selling")
            (old_pid,) = app.register_pids()
            await publish(cp, desire(releases.good, server.url))
            states = [p["state"] for p in await progress_until_final(cp, NEW_VERSION)]
            await wait_until(lambda: selling(app), timeout=GUARD_S, what="selling on the new slot")
            new_pids = app.register_pids()
    finally:
        app.stop()
    assert states == [
        "notified",
        "downloading",
        "verifying",
        "installing",
        "confirming",
        "succeeded",
    ]
    ranges = [asked for name, asked in server.requests]
    assert ranges[0] is None
    assert ranges[1] is not None
    assert int(ranges[1].removeprefix("bytes=").rstrip("-")) > 0  # resumed, not started over
    state = slots(app)
    assert (state["active"], state["committed"], state["trying"]) == ("a", "a", None)
    assert state["versions"] == {"a": NEW_VERSION}
    assert (app.data_dir / "app" / "current").resolve() == app.data_dir / "app" / "slots" / "a"
    assert new_pids != [old_pid]
    log = app.agent_log.read_text()
    assert f"(release {NEW_VERSION}) connected" in log  # the register's hello: the new code


async def test_refused_bundles_leave_the_register_alone_and_a_release_that_cannot_start_reverts(
    mosquitto: Mosquitto, releases: Releases, new_appliance: MakeAppliance
) -> None:
    app = new_appliance()
    device_id = app.device_id
    files = {
        b.path.name: b.path
        for b in (releases.good, releases.crashing, releases.too_new, releases.stranger)
    }
    files[releases.tampered.name] = releases.tampered
    files[releases.forged.name] = releases.forged
    server = BundleServer(files=files)
    files["cut.sfb"] = releases.good.path
    server.cut["cut.sfb"] = 99  # never whole: truncated after every resume
    refused = [
        (
            desire(releases.crashing, server.url, version="0.7.0", rollout="r-disk"),
            "disk_write_failed",
        ),
        (desire(releases.stranger, server.url), "unknown_key"),
        (
            desire(
                releases.good,
                server.url,
                version="0.8.0",
                rollout="r-forged",
                url=f"{server.url}/{releases.forged.name}",
                sha256=_sha(releases.forged),
            ),
            "bad_signature",
        ),
        (desire(releases.too_new, server.url), "agent_too_old"),
        (
            desire(releases.good, server.url, sha256="0" * 64, rollout="r-sha"),
            "bundle_sha256_mismatch",
        ),
        (
            desire(
                releases.good,
                server.url,
                version="0.6.0",
                rollout="r-tamper",
                url=f"{server.url}/{releases.tampered.name}",
                sha256=_sha(releases.tampered),
            ),
            "sha256_mismatch",
        ),
        (
            desire(releases.good, server.url, rollout="r-cut", url=f"{server.url}/cut.sfb"),
            "truncated",
        ),
    ]
    downloads = app.data_dir / "app" / "downloads"
    downloads.mkdir(parents=True)
    full_disk = downloads / f"{releases.crashing.sha256}.sfb.part"
    full_disk.symlink_to("/dev/full")  # every write of that bundle: no space left on device
    app.start()
    try:
        async with (
            asyncio.timeout(GUARD_S),
            serving(server),
            control_plane(mosquitto.url, device_id) as cp,
        ):
            await wait_until(lambda: selling(app), timeout=GUARD_S, what="the register selling")
            (pid,) = app.register_pids()
            outcomes = []
            for wanted, _ in refused:
                await publish(cp, wanted)
                final = (await progress_until_final(cp, wanted.version))[-1]
                outcomes.append((final["state"], final["detail"].split(":")[0]))
            still = app.register_pids()
            full_disk.unlink()  # space again
            # now one that installs but cannot start: the agent goes back to the old register
            await publish(cp, desire(releases.crashing, server.url))
            crash = await progress_until_final(cp, releases.crashing.manifest.version)
            await selling_again(app)
    finally:
        app.stop()
    assert outcomes == [("failed", reason) for _, reason in refused]
    assert still == [pid]  # never restarted by a refused release
    assert [p["state"] for p in crash][-2:] == ["confirming", "reverted"]
    assert "ended" in crash[-1]["detail"]
    state = slots(app)
    assert (state["active"], state["committed"], state["trying"]) == (None, None, None)
    assert not (app.data_dir / "app" / "current").exists()  # the image's register runs again
    log = app.agent_log.read_text()
    assert "refused (unknown_key)" in log
    assert "add the signing key's public key to trusted_release_keys" in log
    assert "reverted to the image's package" in log


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


KillPoint = Callable[[AgentProcess, BundleServer, ControlPlane, Releases], Awaitable[None]]


async def mid_download(
    app: AgentProcess, server: BundleServer, cp: ControlPlane, releases: Releases
) -> None:
    """Half the bundle sent (the server then says nothing more) and some of it on disk."""
    await server.stalled.wait()
    part = app.data_dir / "app" / "downloads" / f"{releases.good.sha256}.sfb.part"
    await wait_until(
        lambda: part.exists() and part.stat().st_size > 0, timeout=GUARD_S, what="a part file"
    )


async def on_trial(
    app: AgentProcess, server: BundleServer, cp: ControlPlane, releases: Releases
) -> None:
    """Installed and switched: the new register is in its health window, not yet committed."""
    await cp.next(
        lambda m: (
            isinstance(m, Event)
            and m.kind == EventKind.RELEASE_PROGRESS
            and m.body["state"] == "confirming"
        )
    )


@pytest.mark.parametrize(
    ("kill_at", "stall", "health_window_s", "outcome", "why", "running", "resumes"),
    [
        pytest.param(
            mid_download,
            True,
            2.0,
            "succeeded",
            "committed",
            NEW_VERSION,
            [True],
            id="mid-download",
        ),
        # a health window far longer than the kill takes: the kill lands inside it
        pytest.param(
            on_trial,
            False,
            120.0,
            "reverted",
            "restarted during the health window",
            IMAGE_VERSION,
            [],
            id="on-trial",
        ),
    ],
)
async def test_an_agent_killed_mid_update_resumes_or_reverts_and_claims_only_what_it_runs(
    mosquitto: Mosquitto,
    releases: Releases,
    new_appliance: MakeAppliance,
    kill_at: KillPoint,
    stall: bool,
    health_window_s: float,
    outcome: str,
    why: str,
    running: str,
    resumes: list[bool],
) -> None:
    app = new_appliance(health_window_s=health_window_s)
    device_id = app.device_id
    name = releases.good.path.name
    server = BundleServer(files={name: releases.good.path}, stall={name} if stall else set())
    app.start()
    try:
        async with (
            asyncio.timeout(GUARD_S),
            serving(server),
            control_plane(mosquitto.url, device_id) as cp,
        ):
            await wait_until(lambda: selling(app), timeout=GUARD_S, what="the register selling")
            await publish(cp, desire(releases.good, server.url))
            await kill_at(app, server, cp, releases)
            assert app.process is not None
            app.process.kill()  # SIGKILL: no cleanup, as a power cut or the OOM killer
            app.process.wait()
            asked_before_kill = len(server.requests)
            restarted_at = len(app.agent_log.read_bytes())
            app.start()
            progress = await progress_until_final(cp, NEW_VERSION)
            reported = await cp.state(lambda s: s.app_release == running)
            await selling_again(app)
    finally:
        app.stop()
    assert [p["state"] for p in progress if p["state"] in FINAL] == [outcome]  # nothing else
    assert why in progress[-1]["detail"]
    assert reported.app_release == running
    after = app.agent_log.read_bytes()[restarted_at:].decode(errors="replace")
    assert f"(release {running}) connected" in after  # the register that sells runs it
    again = [
        asked is not None and int(asked.removeprefix("bytes=").rstrip("-")) > 0
        for _, asked in server.requests[asked_before_kill:]
    ]
    assert again == resumes  # a resume from the part file, or no download at all
