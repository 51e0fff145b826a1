"""Quick keys from the console to a sale by touch, every part real (issue 12).

The control plane is served by uvicorn on SQLite with its configuration link on a private
Mosquitto; the appliance is ``python -m edge.agent`` (tests/edge/agent/agent_process.py), which
starts the register and applies the store's configuration as the link publishes it. In headless
Chromium an operator replaces the store's quick keys in the console's layer editor (preview,
then save); the agent applies the new version live and reports it (no drift left); the kiosk
served by that register shows the new keys; a cashier of the store (added through the staff
service the console's staff page calls, test_editor_browser.py drives that page) signs in with
the keypad, opens the shift, rings the sale with quick-key taps and pays exact cash, all by touch.

Screenshots (tmp_path): console-quick-keys-preview.png, kiosk-quick-keys-dairy.png,
kiosk-quick-keys-sale.png, kiosk-receipt.png. The tenant's tax table names every class the demo
catalog's items carry (an item whose class the table lacks cannot be rung: the register answers
500, see the report of issue 12).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from control_plane.configuration import service, staff
from control_plane.configuration.effective import device_configuration
from control_plane.configuration.layers import Layer
from control_plane.operators.principal import Role
from tests.control_plane.configuration.config_harness import ANA, seed_tenant
from tests.edge.agent.agent_process import AgentProcess
from tests.edge.kiosk.conftest import keypad, tap
from tests.harness.browser import chromium
from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto, wait_until
from tests.harness.store_config import store_config_doc

pytestmark = [pytest.mark.services, pytest.mark.browser, pytest.mark.slow]
GUARD_S = 300  # only against hangs (a loaded machine starts a register in tens of seconds)
PIN = "4826"


def quick_keys(*categories: tuple[str, str, list[tuple[str, str, str]]]) -> dict[str, Any]:
    """The ``quick_keys`` value: (category, colour, [(label, colour, sku)])."""
    return {
        "categories": [
            {
                "name": name,
                "colour": colour,
                "keys": [{"label": lb, "colour": c, "sku": sku} for lb, c, sku in keys],
            }
            for name, colour, keys in categories
        ]
    }


TAX = store_config_doc()["tax"]
BEFORE = quick_keys(("Bakery", "#8a5a2b", [("Croissant", "#f2c14e", "SKU-00007")]))
AFTER = quick_keys(
    ("Dairy", "#2b6f8a", [("Milk 1 l", "#3fa7d6", "SKU-00001")]),
    ("Bakery", "#8a5a2b", [("Butter croissant", "#f2c14e", "SKU-00007")]),
)


async def kiosk_state(port: int) -> dict[str, Any] | None:
    """The register's state as the touchscreen reads it (None until it answers)."""
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.get(f"http://127.0.0.1:{port}/api/state")
    except httpx.TransportError:
        return None
    body: dict[str, Any] | None = answer.json() if answer.status_code == 200 else None
    return body


def labels(state: dict[str, Any] | None) -> list[str]:
    """The quick keys' labels the register offers."""
    register = (state or {}).get("register") or {}
    return [k["label"] for c in register.get("quick_keys") or [] for k in c["keys"]]


async def shot(page: Page, directory: Path, name: str) -> None:
    await page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


async def test_an_operator_changes_quick_keys_and_a_cashier_rings_a_sale_with_them(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    tenant = f"qk{uuid.uuid4().hex[:8]}"
    store, register_id = f"{tenant}-01", f"{tenant}-01-r1"
    appliance = AgentProcess(
        workdir=tmp_path / "appliance",
        device_id=register_id,
        broker_url=mosquitto.url,
        # a loaded machine must not make a slow register look hung: restarts here are ours
        agent={"state_interval_s": 60.0, "heartbeat_timeout_s": 60.0, "start_timeout_s": 180.0},
    )
    async with (
        asyncio.timeout(GUARD_S),
        served_control_plane(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}", broker_url=mosquitto.url
        ) as cp,
        chromium() as browser,
    ):
        engine = cp.app.state.engine
        await seed_tenant(engine, tenant, stores=1, registers=1)
        await service.set_setting(  # every tax class the demo catalog's items name
            engine, actor=ANA, layer=Layer.TENANT, target=tenant, key="tax", value=TAX
        )
        cashier = await staff.add_staff(
            engine, actor=ANA, store_id=store, name="Mira", role="cashier", pin=PIN
        )
        await service.set_setting(
            engine, actor=ANA, layer=Layer.STORE, target=store, key="quick_keys", value=BEFORE
        )
        cp.app.state.config_link.poke()
        appliance.start()
        try:
            await wait_until(
                lambda: _offers(appliance, ["Croissant"]),
                timeout=GUARD_S,
                what="the register running the store's first configuration",
            )
            first = await device_configuration(engine, device_id=register_id)
            running = appliance.register_pids()

            # the operator, in the console: the store layer's quick keys, previewed then saved
            session = await cp.log_in("operator@quick.example", Role.OPERATOR, tenant)
            console = await browser.new_context(viewport={"width": 1280, "height": 1000})
            await console.add_cookies([session.cookie(cp.url)])  # type: ignore[list-item]
            page = await console.new_page()
            await page.goto(f"{cp.url}/config?layer=store&target={store}")
            await page.select_option("#setting-key", "quick_keys")
            await page.fill("#setting-value", json.dumps(AFTER))
            await page.click("#preview-setting")
            await expect(page.locator("#config-result.preview")).to_contain_text("1 register(s)")
            previewed = page.locator(f'#preview-rows tr[data-device="{register_id}"]')
            await expect(previewed).to_contain_text("quick_keys")
            await shot(page, tmp_path, "console-quick-keys-preview")
            await page.click("#save-setting")
            await expect(page.locator("#config-result.ok")).to_contain_text("1 register(s)")
            await expect(page.locator('#settings tr[data-key="quick_keys"]')).to_contain_text(
                "Milk 1 l"
            )

            # the agent applies it live and reports it: no key drifts
            async def reported() -> bool:
                view = await device_configuration(engine, device_id=register_id)
                return (
                    view.version is not None
                    and view.version > (first.version or 0)
                    and view.reported_version == view.version
                    and all(k.match == "match" for k in view.keys)
                )

            await wait_until(reported, timeout=GUARD_S, what="the new version applied, reported")

            # the cashier, on the kiosk this register serves, by touch alone
            kiosk = await browser.new_context(
                viewport={"width": 1280, "height": 800}, has_touch=True
            )
            touch = await kiosk.new_page()
            await touch.goto(f"http://127.0.0.1:{appliance.kiosk_port}")
            await tap(touch, f"employee-{cashier.id}")
            await keypad(touch, PIN)
            await tap(touch, "pad-enter-pin")
            await touch.get_by_test_id("screen-shift").wait_for()
            await keypad(touch, "100")
            await tap(touch, "open-shift")
            await expect(touch.get_by_test_id("quick-keys")).to_be_visible()
            await expect(touch.get_by_test_id("quick-tab-Dairy")).to_have_attribute(
                "aria-selected", "true"
            )
            milk = touch.get_by_test_id("quick-key-SKU-00001")
            await expect(milk).to_contain_text("Milk 1 l")
            await expect(milk).to_have_css("background-color", "rgb(63, 167, 214)")
            await shot(touch, tmp_path, "kiosk-quick-keys-dairy")
            await milk.tap()
            await tap(touch, "quick-tab-Bakery")
            croissant = touch.get_by_test_id("quick-key-SKU-00007")
            await expect(croissant).to_contain_text("Butter croissant")
            await croissant.tap()
            await croissant.tap()
            await expect(touch.get_by_test_id("line")).to_have_count(3)
            await expect(touch.get_by_test_id("total")).to_have_text("CHF 4.95")
            await shot(touch, tmp_path, "kiosk-quick-keys-sale")
            await tap(touch, "pay")
            await tap(touch, "pay-cash-exact")
            receipt = touch.get_by_test_id("receipt")
            await expect(receipt).to_contain_text(f"Store {store}")
            await expect(receipt).to_contain_text("Whole milk 1 l")
            await shot(touch, tmp_path, "kiosk-receipt")
            after_sale = appliance.register_pids()
            await console.close()
            await kiosk.close()
        finally:
            code = appliance.stop()
    assert after_sale == running  # quick keys are a live section: the register never restarted
    assert len(appliance.logged_sales()) == 1
    assert code == 0
    for name in ("console-quick-keys-preview", "kiosk-quick-keys-dairy", "kiosk-receipt"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0


async def _offers(appliance: AgentProcess, wanted: list[str]) -> bool:
    return labels(await kiosk_state(appliance.kiosk_port)) == wanted
