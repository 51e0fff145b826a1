"""The register's side of configuration with a real register: hold only without an open sale,
live sections taken without a restart, a restart section refused live."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge.agent.commands import CommandRefused
from edge.agent.configuration.files import AppliedConfig, write_applied
from edge.ledger import Ledger
from edge.pos.applied_store import store_config_from_document
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.payments import pay_cash, start_payment
from edge.pos.register import Register
from edge.pos.register_db import RegisterDb
from edge.pos.shift_desk import open_new_shift
from edge.pos.store_config import DEMO_CATALOG
from edge.register.config_desk import HOLDING, ConfigDesk, VersionArgs
from protocols.store_config import parse_store_config
from tests.harness.store_config import PINS, store_config_doc

MILK = "7610200000019"


def apply(data_dir: Path, version: int, doc: dict[str, Any]) -> None:
    write_applied(data_dir, AppliedConfig.of(version, parse_store_config(doc)))


@contextlib.asynccontextmanager
async def register_at(tmp_path: Path) -> AsyncIterator[Register]:
    apply(tmp_path, 2, store_config_doc())
    doc = parse_store_config(store_config_doc())
    async with (
        Ledger(tmp_path / "ledger.db", register_id="1") as ledger,
        RegisterDb(tmp_path / "pos.db") as db,
    ):
        register = Register(
            ledger=ledger,
            db=db,
            config=store_config_from_document(doc, version=2),
            catalog=load_snapshot_file(DEMO_CATALOG),
        )
        await register.start()
        yield register


async def open_a_sale(register: Register) -> None:
    await register.sign_in("C01", PINS["C01"])
    await open_new_shift(register, 10000)
    await register.scan(MILK)


async def test_hold_is_refused_while_a_sale_is_open_and_given_after(tmp_path: Path) -> None:
    async with register_at(tmp_path) as register:
        desk = ConfigDesk(data_dir=tmp_path, register=lambda: register)
        await open_a_sale(register)
        with pytest.raises(CommandRefused, match="a sale is open"):
            await desk.hold(VersionArgs(version=3))
        assert register.busy is None
        register.next_sale()  # the sale ends (paid or voided): a fresh cart
        assert await desk.hold(VersionArgs(version=3)) == {"held": True, "open_sale": False}
        assert register.busy == HOLDING


async def test_live_sections_are_taken_without_a_restart(tmp_path: Path) -> None:
    async with register_at(tmp_path) as register:
        desk = ConfigDesk(data_dir=tmp_path, register=lambda: register)
        staff = store_config_doc()["staff"]
        staff["members"] = staff["members"][:1]
        apply(tmp_path, 3, store_config_doc(receipt={"footer": ["Closed Sundays"]}, staff=staff))
        assert await desk.reload(VersionArgs(version=3)) == {"version": 3}
        assert register.config.receipt_footer == ("Closed Sundays",)
        assert [e.id for e in register.config.employees] == ["C01"]
        assert register.config.config_version == 3


async def test_a_restart_section_is_refused_live(tmp_path: Path) -> None:
    async with register_at(tmp_path) as register:
        desk = ConfigDesk(data_dir=tmp_path, register=lambda: register)
        apply(tmp_path, 3, store_config_doc(currency={"code": "EUR"}))
        with pytest.raises(CommandRefused, match="needs a restart"):
            await desk.reload(VersionArgs(version=3))
        assert register.config.currency.code == "CHF"
        assert register.config.config_version == 2


def test_the_applied_file_holds_version_hashes_and_the_normalised_document(
    tmp_path: Path,
) -> None:
    apply(tmp_path, 2, store_config_doc())
    apply(tmp_path, 3, store_config_doc(receipt={"footer": ["x"]}))
    applied = json.loads((tmp_path / "config" / "applied.json").read_text())
    previous = json.loads((tmp_path / "config" / "previous.json").read_text())
    assert (applied["version"], previous["version"]) == (3, 2)
    assert applied["doc"]["receipt"]["footer"] == ["x"]
    assert set(applied["hashes"]) == set(applied["doc"])


async def test_a_sale_prints_the_configured_store_on_its_receipt(tmp_path: Path) -> None:
    async with register_at(tmp_path) as register:
        await open_a_sale(register)
        await start_payment(register, cart_id=None)
        await pay_cash(register, 500, cart_id=None)
        assert register.last_receipt is not None
        text = register.last_receipt.text
    for shown in ("Lindenhof Bakery", "Marktgasse 7", "3011 Bern", "CHE-987.654.321 MWST"):
        assert shown in text
    assert "Fresh every morning" in text
    assert "Merci & bis bald" in text
    assert "Bahnhofstrasse" not in text  # nothing of the demo store


def test_restart_keys_the_register_takes_at_start() -> None:
    doc = store_config_doc(
        log_level="DEBUG",
        catalog={"sync_interval_seconds": 120},
        card_terminal={"host": "10.0.0.77", "port": 20007},
    )
    config = store_config_from_document(parse_store_config(doc), version=2)
    assert (config.log_level, config.catalog_sync_s) == ("DEBUG", 120.0)
    assert config.card_terminal == ("10.0.0.77", 20007)
    assert config.currency.cash_increment_minor == 5
    assert [(c.code, str(c.rate)) for c in config.policy.tax.classes] == [
        ("A", "0.081"),
        ("B", "0.026"),
        ("Z", "0"),
    ]
