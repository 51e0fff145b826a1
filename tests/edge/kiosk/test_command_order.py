"""The register's commands reach it in the order the cashier tapped them, however slowly one of
them travels: a cash-out held back on its way (as a busy network stack or a slow register can)
and an X report tapped right after it are journaled cash-out first, and the X report counts it.
Seen once in CI before the kiosk ordered its commands: the X report was journaled first."""

from __future__ import annotations

import asyncio
import json

import pytest
from playwright.async_api import Page, Route, expect

from tests.edge.kiosk.conftest import Rig, keypad, sign_in_and_open_shift, tap

pytestmark = pytest.mark.browser


async def test_a_slow_cash_out_is_still_journaled_before_the_x_report_tapped_after_it(
    page: Page, rig: Rig
) -> None:
    await sign_in_and_open_shift(page, float_text="150")

    async def held_back(route: Route) -> None:
        await asyncio.sleep(1.5)  # the X report is tapped while this one is on its way
        await route.continue_()

    await page.route("**/api/shift/cash", held_back)
    await tap(page, "menu")
    await tap(page, "menu-cash-out")
    await keypad(page, "50", within="#modal")
    await tap(page, "modal-go")
    await tap(page, "menu")
    await tap(page, "menu-x")
    await expect(page.get_by_test_id("receipt")).to_contain_text("X REPORT")

    records = [json.loads(r.record) for r in await rig.ledger.read_records(1, 100)]
    kinds = [r["kind"] for r in records]
    assert kinds == ["shift.opened", "shift.cash_moved", "report.x"], kinds
    assert records[-1]["body"]["expected_cash_minor"] == 15000 - 5000
