"""schemathesis against the real control plane on SQLite and PostgreSQL: no 5xx, and every answer
documented — its status, its content type and its body's schema.

Inputs are generated from the OpenAPI document, valid and invalid (NUL characters, strings past
their column, negative and huge numbers, missing and extra fields…), and sent over loopback to
the app served with its lifespan (store migrated, ingest on a private Mosquitto, a demo CA so
provisioning answers). schemathesis runs as its own command, as a developer would run it, so a
failure prints the request to replay it.

The suite's run stays near a minute: the coverage phase (every boundary of every field: NUL,
lengths, limits, wrong types — about 1,700 requests) runs on PostgreSQL, the stricter store, and
random fuzzing on both. ``STOREFLEET_FUZZ_EXAMPLES=500`` is the long hunt: every phase on both
stores with that many examples per operation.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto

LONG_RUN = "STOREFLEET_FUZZ_EXAMPLES" in os.environ
pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.timeout(0 if LONG_RUN else 300),  # a long hunt takes as long as it takes
]

EXAMPLES = int(os.environ.get("STOREFLEET_FUZZ_EXAMPLES", "10"))
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
SCHEMATHESIS = Path(sys.executable).with_name("st")
#: Operator sign-in (issue 9) is still being built: its routes answer 401/403 that they do not
#: document yet. Remove this once they do (and give the run a token when every route is guarded).
EXCLUDED_TAGS = ("operators",)


async def test_no_server_error_and_every_answer_documented(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOREFLEET_CA_DIRECTORY", str(tmp_path / "ca"))
    monkeypatch.setenv("STOREFLEET_CA_DEMO", "1")
    postgresql = database_url.startswith("postgresql")
    phases = "examples,coverage,fuzzing" if LONG_RUN or postgresql else "fuzzing"
    async with served_control_plane(database_url=database_url, broker_url=mosquitto.url) as base:
        run = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            "run",
            f"{base}/openapi.json",
            f"--checks={','.join(CHECKS)}",
            f"--max-examples={EXAMPLES}",
            f"--phases={phases}",
            "--workers=1",
            "--generation-database=none",
            "--suppress-health-check=all",
            "--request-timeout=30",
            "--no-color",
            *(f"--exclude-tag={tag}" for tag in EXCLUDED_TAGS),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await run.communicate()
    report = output.decode(errors="replace")
    print(report[report.rfind("SUMMARY") :])  # with -s: cases, failures, seed of this run
    assert run.returncode == 0, report[-30_000:]
    generated = re.search(r"(\d+) generated", report)
    assert generated is not None, report[-5_000:]
    assert int(generated.group(1)) > 0
