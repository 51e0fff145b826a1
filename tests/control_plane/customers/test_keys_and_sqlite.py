"""The master key and the SQLite back end: a short key stops ``serve`` by name, a control plane
without one answers 503, another key opens nothing and says so; search and erasure on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.customers import service
from control_plane.customers.errors import CustomerKeysUnavailable, CustomersOff
from control_plane.customers.keyring import Keyring
from control_plane.customers.router import get_keyring
from control_plane.customers.schemas import CustomerIn
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.operators.service import cli_actor
from control_plane.tenancy import EVERY_TENANT
from tests.control_plane.test_serve_refusals import run

KEY = "a master key for the sqlite test, 0123456789"


@pytest.mark.services
def test_serve_refuses_a_short_master_key_naming_the_variable(tmp_path: Path) -> None:
    code, output = run(
        ["serve"], {"STOREFLEET_CP_CUSTOMERS_MASTER_KEY": "tooshort-s3cret"}, tmp_path
    )

    assert code == 2, output
    assert "STOREFLEET_CP_CUSTOMERS_MASTER_KEY: must be at least 32 characters" in output
    assert "tooshort-s3cret" not in output
    assert "Traceback" not in output


def test_without_a_master_key_customer_routes_answer_503_naming_it() -> None:
    class State:
        customer_keyring = None

    class App:
        state = State()

    class Request:
        app = App()

    with pytest.raises(CustomersOff) as refused:
        get_keyring(Request())  # type: ignore[arg-type]

    assert refused.value.status == 503
    assert "STOREFLEET_CP_CUSTOMERS_MASTER_KEY" in str(refused.value) + refused.value.advice


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}")
    await migrate(engine)
    await registry.create_tenant(engine, tenant_id="acme", name="Acme")
    yield engine
    await engine.dispose()


async def test_search_and_erasure_work_on_sqlite(engine: AsyncEngine) -> None:
    keyring = Keyring(KEY)
    made = await service.create_customer(
        engine,
        keyring=keyring,
        tenant_id="acme",
        body=CustomerIn(name="Zoë Dupont", email="zoe@example.fr", phone="+33 6 12 34 56 78"),
        actor=cli_actor(),
    )
    found = {
        text: [c.id for c in await service.search_customers(
            engine, keyring=keyring, tenant_id="acme", text=text, actor=cli_actor())]
        for text in ("zoe dup", "06 12 34 56 78", "ZOE@example.fr", made.card)
    }  # fmt: skip
    await service.erase_customer(engine, scope=EVERY_TENANT, customer_id=made.id, actor=cli_actor())
    after = await service.search_customers(
        engine, keyring=keyring, tenant_id="acme", text="zoe dup", actor=cli_actor()
    )

    assert found == {text: [made.id] for text in found}
    assert after == []


async def test_another_master_key_opens_nothing_and_says_which_to_set(engine: AsyncEngine) -> None:
    made = await service.create_customer(
        engine, keyring=Keyring(KEY), tenant_id="acme", body=CustomerIn(name="Ana"),
        actor=cli_actor(),
    )  # fmt: skip

    with pytest.raises(CustomerKeysUnavailable) as refused:
        await service.get_customer(
            engine,
            keyring=Keyring("another master key entirely, 0123456789"),
            scope=EVERY_TENANT,
            customer_id=made.id,
        )

    assert "STOREFLEET_CP_CUSTOMERS_MASTER_KEY" in str(refused.value)
    assert refused.value.status == 503
