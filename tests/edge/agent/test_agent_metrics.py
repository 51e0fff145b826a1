"""The agent's own Prometheus counters, scraped from its own endpoint (issue 10).

The endpoint answers whether or not the register runs (the agent must not depend on it); the
scrape is of the real ``python -m edge.agent`` process; :func:`answer` is checked alone for what
is not ``GET /metrics``.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.agent.metrics_http import answer, serve_metrics
from tests.harness.services import Mosquitto, free_port, wait_until

from .agent_harness import new_device_id
from .agent_process import AgentProcess

GUARD_S = 120  # only against hangs


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.services
@pytest.mark.slow
async def test_the_agent_serves_its_counters_while_the_register_cannot_start(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A register that dies at every start: the scrape shows the starts, exits and crash loop."""
    appliance = AgentProcess(
        workdir=tmp_path / "appliance",
        device_id=new_device_id(),
        broker_url=mosquitto.url,
        agent={"crash_loop_after": 2, "backoff_initial_s": 0.05, "backoff_max_s": 0.5},
    )
    appliance.data_dir.mkdir(parents=True)
    (appliance.data_dir / "ledger.db").write_bytes(b"this is not an SQLite database\n" * 64)
    appliance.start()
    try:
        async with asyncio.timeout(GUARD_S):

            async def looped() -> bool:
                text = await appliance.metrics()
                return text is not None and "storefleet_agent_register_crash_loop 1.0" in text

            await wait_until(looped, timeout=GUARD_S, what="the crash loop in the agent's metrics")
            text = await appliance.metrics()
            async with httpx.AsyncClient(timeout=5.0) as client:
                elsewhere = await client.get(f"http://127.0.0.1:{appliance.metrics_port}/")
    finally:
        code = appliance.stop()
    assert text is not None
    found = samples(text)
    assert found[("storefleet_agent_register_crash_loop", ())] == 1.0
    assert found[("storefleet_agent_register_starts_total", (("why", "boot"),))] == 1.0
    assert found[("storefleet_agent_register_starts_total", (("why", "crashed"),))] >= 1.0
    exits = {
        labels: value
        for (name, labels), value in found.items()
        if name == "storefleet_agent_register_exits_total"
    }
    # the crash loop needs two failed runs; how each ended may differ on a loaded machine (one run
    # in a suite at load 15 counted a single "exit 1"), but the corrupt ledger's own exit is there
    assert sum(exits.values()) >= 2.0, exits
    assert exits[(("how", "exit 1"),)] >= 1.0, exits
    assert elsewhere.status_code == 404
    assert code == 0


@pytest.mark.parametrize(
    ("line", "status"),
    [
        pytest.param(b"GET /metrics HTTP/1.1", b"200", id="scrape"),
        pytest.param(b"GET /metrics?name[]=x HTTP/1.1", b"200", id="query-ignored"),
        pytest.param(b"HEAD /metrics HTTP/1.1", b"200", id="head"),
        pytest.param(b"POST /metrics HTTP/1.1", b"405", id="post-refused"),
        pytest.param(b"GET /healthz HTTP/1.1", b"404", id="other-path"),
        pytest.param(b"GET /../etc/passwd HTTP/1.1", b"404", id="traversal"),
        pytest.param(b"\x16\x03\x01 hello", b"400", id="tls-hello"),
        pytest.param(b"", b"400", id="empty"),
    ],
)
def test_only_get_metrics_is_answered(line: bytes, status: bytes) -> None:
    response = answer(line)
    assert response.split(b" ", 2)[1] == status
    if line.startswith(b"HEAD"):
        assert response.endswith(b"\r\n\r\n")


async def test_a_request_that_never_ends_its_head_is_dropped() -> None:
    """A client that sends more than a request head without ending it is cut off, unanswered."""
    port = free_port()
    bound = asyncio.Event()
    server = asyncio.create_task(serve_metrics(host="127.0.0.1", port=port, bound=bound))
    try:
        await bound.wait()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20_000)
        await writer.drain()
        got = await reader.read()
        writer.close()
    finally:
        server.cancel()
    assert got == b""


async def test_a_taken_port_leaves_the_agent_running(caplog: pytest.LogCaptureFixture) -> None:
    """The endpoint returns (the agent goes on supervising) and the log names the setting."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with asyncio.timeout(10):
            await serve_metrics(host="127.0.0.1", port=port)
    assert "STOREFLEET_AGENT_METRICS_PORT" in caplog.text
