"""A store whose tax table lacks a class its catalog uses: warned at start, refused at the till.

The register is real (ledger and pos.db in tmp_path); only its configuration is the demo store's
without tax class B, the case found at a store: milk (class B) answered 500 when scanned.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from edge.checkout.catalog import ChangeSet, Item
from edge.checkout.errors import UnknownTaxClass
from edge.checkout.payment_terminal_client import TcpPaymentTerminal
from edge.checkout.payment_terminal_sim import PaymentTerminalSimulator
from edge.ledger import Ledger
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.register import Register
from edge.pos.register_db import RegisterDb
from edge.pos.store_config import DEMO_CATALOG, StoreConfig, load_store_config
from tests.edge.pos.conftest import CABLE, MILK, Clock, signed_in_with_shift

REFUSED = "storefleet_register_unknown_tax_class_total"
FOUND = "storefleet_register_untaxable_items_total"
WHAT_TO_DO = "add tax class B to the store's tax table in the console"


def without_class(config: StoreConfig, code: str) -> StoreConfig:
    tax = config.policy.tax
    classes = tuple(c for c in tax.classes if c.code != code)
    return replace(config, policy=replace(config.policy, tax=replace(tax, classes=classes)))


def refused(tax_class: str) -> float:
    return REGISTRY.get_sample_value(REFUSED, {"tax_class": tax_class}) or 0.0


def found() -> float:
    return REGISTRY.get_sample_value(FOUND) or 0.0


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "edge.pos.tax_check"]


@pytest.fixture
async def store_without_b(
    tmp_path: Path, clock: Clock, terminal_sim: PaymentTerminalSimulator
) -> AsyncIterator[Register]:
    """A register (not started: the test starts it) whose tax table lacks class B."""
    async with (
        Ledger(tmp_path / "ledger.db", register_id="1") as ledger,
        RegisterDb(tmp_path / "pos.db") as db,
    ):
        yield Register(
            ledger=ledger,
            db=db,
            config=without_class(load_store_config(), "B"),
            catalog=load_snapshot_file(DEMO_CATALOG),
            terminal=TcpPaymentTerminal(host=terminal_sim.host, port=terminal_sim.port, timeout=5),
            clock=clock,
        )


async def test_start_warns_once_naming_the_items_the_tax_table_cannot_tax(
    store_without_b: Register, caplog: pytest.LogCaptureFixture
) -> None:
    before = found()
    caplog.set_level(logging.WARNING, logger="edge.pos.tax_check")
    await store_without_b.start()
    untaxable = [i for i in store_without_b.catalog if i.tax_class == "B" and i.active]
    assert untaxable, "the demo catalog sells class B items"
    [warning] = warnings_of(caplog)
    text = warning.getMessage()
    assert "Whole milk 1 l" in text
    assert "add tax class(es) B to the store's tax table in the console" in text
    assert found() - before == len(untaxable)
    assert len(store_without_b.catalog) > len(untaxable)  # nothing dropped


async def test_scanning_an_item_of_a_class_the_store_lacks_is_refused_counted_and_logged(
    store_without_b: Register, caplog: pytest.LogCaptureFixture
) -> None:
    await store_without_b.start()
    reg = await signed_in_with_shift(store_without_b)
    await reg.scan(CABLE)  # class A sells
    seq = reg.ledger.last_seq
    before = refused("B")
    caplog.clear()
    caplog.set_level(logging.WARNING, logger="edge.pos.tax_check")
    with pytest.raises(UnknownTaxClass) as err:
        await reg.scan(MILK)
    assert err.value.item_name == "Whole milk 1 l"
    assert WHAT_TO_DO in err.value.cashier_message
    with pytest.raises(UnknownTaxClass):
        await reg.add_item(err.value.item_id, Decimal(1))
    assert refused("B") - before == 2
    logged = warnings_of(caplog)
    assert len(logged) == 2
    assert all(r.exc_info is None and WHAT_TO_DO in r.getMessage() for r in logged)
    assert [line.name for line in reg.cart.open_lines] == ["USB-C cable 1 m"]
    assert reg.cart.totals().total_minor == 1490  # the sale still totals: nothing half-added
    assert reg.ledger.last_seq == seq


async def test_a_catalog_change_naming_an_unknown_class_is_kept_and_warned(
    register: Register, caplog: pytest.LogCaptureFixture
) -> None:
    version = register.catalog.version
    gift = Item("I99001", "Gift wrap", 300, "Q", "Gifts", sku="SKU-99001")
    caplog.set_level(logging.WARNING, logger="edge.pos.tax_check")
    register.apply_catalog(ChangeSet(version, version + 1, upserts=(gift,)))
    assert register.catalog.by_id("I99001") == gift
    [warning] = warnings_of(caplog)
    assert "I99001 'Gift wrap' (class Q)" in warning.getMessage()
