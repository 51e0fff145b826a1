"""``/readyz`` says whether the instance can work, naming the part that is down; ``/healthz`` is
liveness only.

Regression (issue 8): ``/healthz`` answered ok with the ingest worker dead or the broker
unreachable, and there was no readiness to route traffic by.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from control_plane.app import create_app
from control_plane.db.engine import make_engine, migrate
from control_plane.health import router as health_router
from control_plane.ingest.worker import IngestSettings, IngestWorker
from control_plane.settings import ControlPlaneSettings
from control_plane.supervision import background_tasks
from edge.ledger import Ledger
from edge.simulated_register import RingSettings, ring_sales
from mqttlink.backoff import Backoff
from protocols.broker_url import parse_broker_url
from protocols.journal_wire import batch_bytes
from protocols.topics import Channel, device_topic
from tests.harness.services import Mosquitto, drop_pg_database, free_port, wait_until

pytestmark = pytest.mark.services
GUARD_S = 90


@asynccontextmanager
async def served(database_url: str, broker_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app under uvicorn in this loop, and a client on it."""
    port = free_port()
    settings = ControlPlaneSettings(database_url=database_url, broker_url=broker_url, port=port)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve(), name="control-plane")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            await wait_until(lambda: server.started or task.done(), what="uvicorn to start")
            assert not task.done(), "control plane exited at start"
            yield client
    finally:
        server.should_exit = True
        await task


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, bool], dict[str, str]]:
    answer = await client.get("/readyz")
    checks = answer.json()["checks"]
    return (
        answer.status_code,
        {name: check["ok"] for name, check in checks.items()},
        {name: check["detail"] for name, check in checks.items()},
    )


def ready_is(client: httpx.AsyncClient, code: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return (await client.get("/readyz")).status_code == code

    return check


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_readiness_follows_the_broker_and_the_database(
    database_url: str, mosquitto: Mosquitto
) -> None:
    async with asyncio.timeout(GUARD_S), served(database_url, mosquitto.url) as client:
        await wait_until(ready_is(client, 200), what="ready")
        up = await readiness(client)

        mosquitto.kill()
        await wait_until(ready_is(client, 503), what="not ready without the broker")
        no_broker = await readiness(client)
        live_without_broker = (await client.get("/healthz")).status_code

        mosquitto.start()
        await wait_until(ready_is(client, 200), what="ready again with the broker back")

        await drop_pg_database(database_url)
        no_database = await readiness(client)
        live_without_database = (await client.get("/healthz")).status_code

    assert up[:2] == (200, {"database": True, "ingest": True, "broker": True})
    assert no_broker[:2] == (503, {"database": True, "ingest": True, "broker": False})
    assert no_broker[2]["broker"] == f"not connected to {mosquitto.url}; retrying with backoff"
    assert no_database[:2] == (503, {"database": False, "ingest": True, "broker": True})
    assert "does not answer" in no_database[2]["database"]
    assert (live_without_broker, live_without_database) == (200, 200)


async def test_readiness_is_documented_with_both_answers(
    database_url: str, mosquitto: Mosquitto
) -> None:
    settings = ControlPlaneSettings(database_url=database_url, broker_url=mosquitto.url)
    spec = create_app(settings).openapi()  # the document /openapi.json serves to operators
    answers = spec["paths"]["/readyz"]["get"]["responses"]
    assert {"200", "503"} <= set(answers)
    assert answers["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/Readiness")


async def test_a_dead_ingest_worker_makes_the_instance_not_ready(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A real death: this worker has no partition to put a batch in (ZeroDivisionError)."""
    engine = make_engine(database_url)
    await migrate(engine)
    worker = IngestWorker(
        engine=engine,
        broker=parse_broker_url(mosquitto.url),
        settings=IngestSettings(partitions=0, backoff_max=0.05),
    )
    async with Ledger(tmp_path / "edge.db", register_id="1") as ledger:
        await ring_sales(ledger, RingSettings(rate=0, count=1, seed=1))
        batch = batch_bytes([r.record for r in await ledger.read_records(1, 1)], sent_at=0)
    app = FastAPI()
    app.include_router(health_router)
    app.state.engine, app.state.ingest = engine, worker

    def no_restart_yet() -> Backoff:  # the restart itself: test_supervision
        return Backoff(initial=600, cap=600, uniform=lambda _low, high: high)

    try:
        async with (
            asyncio.timeout(GUARD_S),
            background_tasks(no_restart_yet) as tasks,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cp") as api,
        ):
            app.state.ingest_task = supervised = tasks.supervise("ingest-worker", worker.run)
            await wait_until(ready_is(api, 200), what="ready")
            broker = parse_broker_url(mosquitto.url)
            async with aiomqtt.Client(broker.host, broker.port, identifier="reg-x") as device:
                await device.publish(device_topic("reg-x", Channel.JOURNAL), batch, qos=1)
            await wait_until(lambda: supervised.deaths == 1, what="the worker's death")
            dead = await readiness(api)
            live = (await api.get("/healthz")).status_code
    finally:
        await engine.dispose()
    assert dead[:2] == (503, {"database": True, "ingest": False, "broker": False})
    assert dead[2]["ingest"] == (
        "not running: died 1 times, last ZeroDivisionError: integer modulo by zero; restarting"
    )
    assert live == 200
