"""The first-boot desk on its own: refusals that never leave the register, one attempt at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge.enrolment.first_boot import EnrolmentResult
from edge.enrolment.settings import EnrolmentSettings
from edge.kiosk.enrolment_desk import DeskBusy, EnrolmentDesk
from provisioning.device_keys import DeviceIdentity, IdentityState

GUARD_S = 10  # only against hangs; nothing asserts on time
# nothing listens there; every case below is refused before the desk would call it
NOWHERE = EnrolmentSettings(
    control_plane_url="http://127.0.0.1:9", ca_fingerprint="0" * 64, identity_dir=Path("/x")
)


async def _never(_result: EnrolmentResult) -> None:
    raise AssertionError("nothing here may enrol")


@contextlib.asynccontextmanager
async def running_desk(
    identity_dir: Path, *, codes: EnrolmentSettings | None
) -> AsyncIterator[EnrolmentDesk]:
    desk = EnrolmentDesk(identity_dir=identity_dir, on_enrolled=_never, code_settings=codes)
    task = asyncio.create_task(desk.run(), name="desk-under-test")
    try:
        yield desk
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def settled(desk: EnrolmentDesk) -> dict[str, Any]:
    """Wait (on the desk's own change signal) until the attempt is over; its state then."""
    changed = asyncio.Event()
    desk.on_change = changed.set
    async with asyncio.timeout(GUARD_S):
        while desk.busy:
            changed.clear()
            await changed.wait()
    return desk.state()


async def refused(desk: EnrolmentDesk, text: str, *, typed: bool) -> dict[str, Any]:
    """Submit and wait for the outcome."""
    desk.submit(text, typed=typed)
    return await settled(desk)


@pytest.mark.parametrize(
    ("text", "typed", "codes", "reason"),
    [
        pytest.param("T1HE-X523-EGPT", True, NOWHERE, "malformed_token", id="check-char-wrong"),
        pytest.param("7610200000019", False, NOWHERE, "malformed_token", id="product-barcode"),
        pytest.param("sfenrol:9?u=x", False, NOWHERE, "not_an_enrolment_code", id="bad-qr"),
        pytest.param("T1HE-X523-EGPS", True, None, "codes_not_configured", id="codes-off"),
    ],
)
async def test_refused_on_the_register_before_any_request(
    tmp_path: Path, text: str, typed: bool, codes: EnrolmentSettings | None, reason: str
) -> None:
    async with running_desk(tmp_path / "identity", codes=codes) as desk:
        state = await refused(desk, text, typed=typed)

    assert state["refusal"]["reason"] == reason
    assert state["failed_step"] is None  # stopped before the first step: nothing was sent
    assert DeviceIdentity(tmp_path / "identity").state() is IdentityState.NEW


async def test_one_attempt_at_a_time_and_a_refusal_frees_the_desk(tmp_path: Path) -> None:
    async with running_desk(tmp_path / "identity", codes=NOWHERE) as desk:
        desk.submit("T1HE-X523-EGPT", typed=True)
        with pytest.raises(DeskBusy, match="already running"):
            desk.submit("T1HE-X523-EGPT", typed=True)
        first = await settled(desk)
        again = await refused(desk, "T1HE-X523-EGPT", typed=True)

    assert first["phase"] == again["phase"] == "refused"
