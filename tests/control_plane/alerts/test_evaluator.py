"""Alerts fire and clear, one open per device and kind, on SQLite and PostgreSQL.

Each case sets up what the control plane stores when the thing happens (through the same
functions the ingest calls where there is one: ``apply_state``, ``record_event``), evaluates,
checks the alert, evaluates again (nothing new: idempotent), ends the condition, evaluates, and
checks the alert cleared by itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.alerts import evaluator, service
from control_plane.alerts.events import record_event
from control_plane.alerts.rules import DAY_MS, Thresholds
from control_plane.alerts.tables import alerts, device_events, device_history
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.devices.state import apply_state
from control_plane.devices.tables import device_state, devices
from control_plane.ingest.tables import journal
from control_plane.operators.principal import Principal, Role
from control_plane.operators.tables import audit_log
from control_plane.provisioning.tables import issued_certificates
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.messages import State
from tests.harness.services import create_pg_database, drop_pg_database

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]

NOW = 1_800_000_000_000
MINUTE = 60_000
DEVICE = "acme-01-r1"
LIMITS = Thresholds()
OUT_OF_PAPER = {
    "device": "receipt-printer",
    "kind": "printer",
    "connected": True,
    "error": "receipt-printer: out of paper",
    "last_seen": 1_763_700_000.5,
    "detail": {"paper": "out"},
    "counters": {"jobs": 3},
}


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """One migrated store per back end for the module (a PostgreSQL database takes seconds)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('alerts') / 'cloud.db'}"
    else:
        url = await create_pg_database()
    engine = make_engine(url)
    await migrate(engine)
    for tenant in ("acme", "globex"):
        await registry.create_tenant(engine, tenant_id=tenant, name=tenant)
        await registry.create_store(engine, store_id=f"{tenant}-01", tenant_id=tenant, name="S")
        await registry.register_device(engine, device_id=f"{tenant}-01-r1", store_id=f"{tenant}-01")
    yield engine
    await engine.dispose()
    if request.param == "postgresql":
        await drop_pg_database(url)


@pytest_asyncio.fixture(loop_scope="module")
async def engine(store: AsyncEngine) -> AsyncEngine:
    """The module's store with every alert, sample, event, report and certificate gone."""
    async with store.begin() as conn:
        for table in (
            alerts,
            device_history,
            device_events,
            device_state,
            issued_certificates,
            journal,
        ):
            await conn.execute(delete(table))
        await conn.execute(
            update(devices).values(
                last_seen_at=NOW, backlog=0, lag_ms=None, ingest_lag_ms=None, hwm=0,
                chain_ok=True, chain_detail=None,
            )
        )  # fmt: skip
    return store


async def _heard(engine: AsyncEngine, device_id: str, at: int, **values: object) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(devices).where(devices.c.id == device_id).values(last_seen_at=at, **values)
        )


async def _open(engine: AsyncEngine) -> dict[tuple[str, str], str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(alerts.c.device_id, alerts.c.kind, alerts.c.detail).where(
                alerts.c.cleared_at.is_(None)
            )
        )
        return {(row.device_id, row.kind): row.detail for row in rows}


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(alerts))).scalar_one())


async def test_a_silent_device_alerts_once_and_clears_when_heard(engine: AsyncEngine) -> None:
    await _heard(engine, DEVICE, NOW - 11 * MINUTE)

    first = await evaluator.evaluate(engine, now_ms=NOW)
    again = await evaluator.evaluate(engine, now_ms=NOW + MINUTE)

    assert (first.opened, again.opened) == (1, 0)
    assert list(await _open(engine)) == [(DEVICE, "silent")]
    assert await _count(engine) == 1
    await _heard(engine, DEVICE, NOW + 2 * MINUTE)
    cleared = await evaluator.evaluate(engine, now_ms=NOW + 2 * MINUTE)
    assert cleared.cleared == 1
    assert await _open(engine) == {}
    # silent again later: a new alert, the cleared one stays in the history
    await evaluator.evaluate(engine, now_ms=NOW + 20 * MINUTE)
    assert (DEVICE, "silent") in await _open(engine)
    assert await _count(engine) == 3  # acme silent twice, globex silent once


async def test_printer_out_of_paper(engine: AsyncEngine) -> None:
    await apply_state(engine, DEVICE, State(peripherals={"receipt-printer": OUT_OF_PAPER}))

    await evaluator.evaluate(engine, now_ms=NOW)

    assert (await _open(engine))[(DEVICE, "printer")] == "receipt-printer: out of paper"
    fixed = OUT_OF_PAPER | {"error": None, "detail": {"paper": "ok"}}
    await apply_state(engine, DEVICE, State(peripherals={"receipt-printer": fixed}))
    await evaluator.evaluate(engine, now_ms=NOW + MINUTE)
    assert (DEVICE, "printer") not in await _open(engine)


async def test_a_certificate_expiring_within_30_days(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(issued_certificates).values(
                serial="01", kind="device", common_name=DEVICE, device_id=DEVICE,
                not_before=NOW - DAY_MS, not_after=NOW + 29 * DAY_MS, public_key_sha256="0" * 64,
            )
        )  # fmt: skip
    await evaluator.evaluate(engine, now_ms=NOW)
    assert "29 days" in (await _open(engine))[(DEVICE, "certificate_expiring")]
    # renewed: the newest certificate runs a year
    async with engine.begin() as conn:
        await conn.execute(
            insert(issued_certificates).values(
                serial="02", kind="device", common_name=DEVICE, device_id=DEVICE,
                not_before=NOW, not_after=NOW + 365 * DAY_MS, public_key_sha256="1" * 64,
            )
        )  # fmt: skip
    await evaluator.evaluate(engine, now_ms=NOW + MINUTE)
    assert (DEVICE, "certificate_expiring") not in await _open(engine)


async def test_crash_loop_until_the_register_recovers(engine: AsyncEngine) -> None:
    assert await record_event(
        engine, DEVICE, kind="app.crash_loop", ts=NOW, body={"failures": 5}, now_ms=NOW
    )
    assert not await record_event(engine, DEVICE, kind="app.restarted", ts=NOW, body={}, now_ms=NOW)
    await evaluator.evaluate(engine, now_ms=NOW)
    assert "5 starts" in (await _open(engine))[(DEVICE, "crash_loop")]
    await record_event(engine, DEVICE, kind="app.recovered", ts=NOW, body={}, now_ms=NOW)
    await evaluator.evaluate(engine, now_ms=NOW + MINUTE)
    assert (DEVICE, "crash_loop") not in await _open(engine)


@pytest.mark.parametrize(
    ("detail", "kind"),
    [
        ("seq 7: prev_hash does not continue the stored chain", "chain_broken"),
        ("journal head refused (bad_signature): forged", "chain_broken"),
        ("seq 9: the cloud cannot store it: sale.completed body invalid", "record_refused"),
    ],
)  # fmt: skip
async def test_chain_broken_and_record_refused(engine: AsyncEngine, detail: str, kind: str) -> None:
    await _heard(engine, DEVICE, NOW, chain_ok=False, chain_detail=detail)
    await evaluator.evaluate(engine, now_ms=NOW)
    assert (await _open(engine))[(DEVICE, kind)] == detail
    await _heard(engine, DEVICE, NOW, chain_ok=True, chain_detail=None)
    await evaluator.evaluate(engine, now_ms=NOW + MINUTE)
    assert await _open(engine) == {}


async def test_lag_above_the_limit(engine: AsyncEngine) -> None:
    await _heard(engine, DEVICE, NOW, lag_ms=LIMITS.lag_limit_ms + 1)
    await evaluator.evaluate(engine, now_ms=NOW)
    assert (DEVICE, "replication_lag") in await _open(engine)
    await _heard(engine, DEVICE, NOW, lag_ms=LIMITS.lag_limit_ms)
    await evaluator.evaluate(engine, now_ms=NOW + MINUTE)
    assert (DEVICE, "replication_lag") not in await _open(engine)


async def test_backlog_growing_over_samples(engine: AsyncEngine) -> None:
    for tick, backlog in enumerate((5, 9, 30)):
        await _heard(engine, DEVICE, NOW + tick * MINUTE, backlog=backlog)
        await evaluator.evaluate(engine, now_ms=NOW + tick * MINUTE)
        assert (DEVICE, "backlog_growing") not in await _open(engine)  # 3 rises need 4 samples
    await _heard(engine, DEVICE, NOW + 3 * MINUTE, backlog=31)
    await evaluator.evaluate(engine, now_ms=NOW + 3 * MINUTE)
    assert "5 → 31" in (await _open(engine))[(DEVICE, "backlog_growing")]
    await _heard(engine, DEVICE, NOW + 4 * MINUTE, backlog=12)  # draining
    await evaluator.evaluate(engine, now_ms=NOW + 4 * MINUTE)
    assert (DEVICE, "backlog_growing") not in await _open(engine)


async def test_clock_running_ahead(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(journal).values(
                device_id=DEVICE, seq=1, kind="drawer.opened", ts=NOW + 5 * MINUTE,
                prev_hash="0" * 64, hash="1" * 64, body="{}", received_at=NOW,
            )
        )  # fmt: skip
    await _heard(engine, DEVICE, NOW, hwm=1)
    await evaluator.evaluate(engine, now_ms=NOW)
    assert "ahead" in (await _open(engine))[(DEVICE, "clock_skew")]


async def test_history_is_bounded_per_device(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluator, "HISTORY_MS", 3 * MINUTE + MINUTE // 2)
    for tick in range(7):
        await _heard(engine, DEVICE, NOW + tick * MINUTE, backlog=tick)
        await _heard(engine, "globex-01-r1", NOW + tick * MINUTE)
        await evaluator.evaluate(engine, now_ms=NOW + tick * MINUTE)
    points = await service.history(engine, scope=TenantScope("acme"), device_id=DEVICE)
    assert [p["backlog"] for p in points] == [3, 4, 5, 6]
    async with engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(device_history))).scalar()
    assert total == 8


async def test_acknowledge_is_audited_and_kept_to_the_tenant(engine: AsyncEngine) -> None:
    await _heard(engine, DEVICE, NOW - 11 * MINUTE)
    await _heard(engine, "globex-01-r1", NOW - 11 * MINUTE)
    await evaluator.evaluate(engine, now_ms=NOW)
    [mine] = await service.list_alerts(engine, scope=TenantScope("acme"))
    [theirs] = await service.list_alerts(engine, scope=TenantScope("globex"))
    operator = Principal(
        operator_id="op1", email="op@acme.example", role=Role.OPERATOR, tenant_id="acme",
        via="session", scopes=None,
    )  # fmt: skip

    with pytest.raises(service.AlertNotFound):
        await service.acknowledge(
            engine, scope=TenantScope("acme"), alert_id=theirs["id"], principal=operator,
            client="test", now_ms=NOW,
        )  # fmt: skip
    acked = await service.acknowledge(
        engine, scope=TenantScope("acme"), alert_id=mine["id"], principal=operator,
        client="test", now_ms=NOW,
    )  # fmt: skip

    assert (acked["acked_by"], acked["cleared_at"]) == ("op@acme.example", None)
    async with engine.connect() as conn:
        entries = (
            (await conn.execute(select(audit_log).where(audit_log.c.action == "alerts:ack")))
            .mappings()
            .all()
        )
    assert [(e["actor"], e["tenant_id"], e["outcome"]) for e in entries] == [
        ("op@acme.example", "acme", "ok")
    ]
    assert json.loads(entries[0]["after"])["acked_by"] == "op@acme.example"
    assert await service.list_alerts(engine, scope=EVERY_TENANT, state="all")


async def test_a_register_never_heard_is_not_silent(engine: AsyncEngine) -> None:
    """Registered ahead of its installation: nothing to miss yet (the other one was heard)."""
    await _heard(engine, DEVICE, None)  # type: ignore[arg-type]

    await evaluator.evaluate(engine, now_ms=NOW + DAY_MS)

    assert list(await _open(engine)) == [("globex-01-r1", "silent")]
