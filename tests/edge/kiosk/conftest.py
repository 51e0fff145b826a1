"""The real kiosk in real headless Chromium: uvicorn on a free loopback port, a real ledger and
pos.db in tmp_path, the card terminal simulator on loopback, and optionally a replicator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from edge.checkout.payment_terminal_client import TcpPaymentTerminal
from edge.checkout.payment_terminal_sim import PaymentTerminalSimulator
from edge.kiosk.app import create_kiosk_app
from edge.kiosk.server import serve_kiosk
from edge.ledger import Ledger
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.printer import ScreenPrinter
from edge.pos.register import Register
from edge.pos.register_db import RegisterDb
from edge.pos.store_config import DEMO_CATALOG, load_store_config
from tests.harness.services import free_port

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "artifacts" / "kiosk"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--no-first-run",
]
SIZES = ((800, 480), (1280, 800))


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()


@dataclass
class Rig:
    """A running kiosk and what it is made of."""

    url: str
    register: Register
    ledger: Ledger
    terminal: PaymentTerminalSimulator
    printer: ScreenPrinter
    connected: asyncio.Event | None = None
    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)


async def start_rig(
    tmp_path: Path,
    *,
    connected: asyncio.Event | None = None,
    enrolled: bool = True,
    ledger: Ledger | None = None,
) -> Rig:
    stack = contextlib.AsyncExitStack()
    if ledger is None:
        ledger = await stack.enter_async_context(Ledger(tmp_path / "ledger.db", register_id="1"))
    db = await stack.enter_async_context(RegisterDb(tmp_path / "pos.db"))
    sim = await stack.enter_async_context(PaymentTerminalSimulator())
    printer = ScreenPrinter()
    register = Register(
        ledger=ledger,
        db=db,
        config=load_store_config(),
        catalog=load_snapshot_file(DEMO_CATALOG),
        terminal=TcpPaymentTerminal(host=sim.host, port=sim.port, timeout=10),
        printer=printer,
    )
    await register.start()
    app = create_kiosk_app(
        register=register, enrolled=enrolled, connected=connected, link_interval=0.05
    )
    port = free_port()
    await stack.enter_async_context(serve_kiosk(app, host="127.0.0.1", port=port))
    return Rig(f"http://127.0.0.1:{port}", register, ledger, sim, printer, connected, stack)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    started = await start_rig(tmp_path)
    yield started
    await started.stack.aclose()


@pytest.fixture
async def page(browser: Browser, rig: Rig) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, has_touch=True)
    tab = await context.new_page()
    await tab.goto(rig.url)
    yield tab
    await context.close()


async def screenshots(page: Page, name: str) -> None:
    """Save the screen at both kiosk sizes (artifacts/kiosk is gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for width, height in SIZES:
        await page.set_viewport_size({"width": width, "height": height})
        await page.screenshot(path=str(ARTIFACTS / f"{name}-{width}x{height}.png"))
    if original is not None:
        await page.set_viewport_size(original)


async def tap(page: Page, testid: str) -> None:
    await page.get_by_test_id(testid).tap()


async def keypad(page: Page, keys: str, *, within: str = "") -> None:
    """Tap keypad keys on the visible pad (``within`` narrows to a container selector)."""
    scope = page.locator(within) if within else page.locator(".screen:not([hidden])")
    for key in keys:
        await scope.locator(f'.pad button[data-key="{key}"]:visible').first.tap()


async def sign_in(page: Page, employee: str = "E01", pin: str = "1234") -> None:
    await tap(page, f"employee-{employee}")
    await keypad(page, pin)
    await page.get_by_test_id("pad-enter-pin").tap()


async def sign_in_and_open_shift(page: Page, float_text: str = "100") -> None:
    await sign_in(page)
    await page.get_by_test_id("screen-shift").wait_for()
    await keypad(page, float_text)
    await tap(page, "open-shift")
    await page.get_by_test_id("screen-sale").wait_for()


async def wedge_scan(page: Page, code: str) -> None:
    """What a keyboard-wedge scanner does: type the digits, then Enter, into the page."""
    await page.keyboard.type(code)
    await page.keyboard.press("Enter")
