"""``storefleet release publish`` against a served control plane: a bundle built and signed with
``storefleet release``'s own key file is published; the same file again is told apart; a
tampered bundle and a wrong token are refused with the control plane's reason, exit 1.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from protocols.release_bundle import public_key_text
from storefleet.release_cli import app, write_signing_key
from tests.control_plane.rollouts.fleet import make_bundle
from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto

pytestmark = pytest.mark.services


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_publish_uploads_and_reports_refusals(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    key = write_signing_key(tmp_path / "release.key")
    good, tampered = tmp_path / "good.sfb", tmp_path / "tampered.sfb"
    good.write_bytes(make_bundle("3.0.0", key))
    tampered.write_bytes(make_bundle("3.0.1", key, tamper=True))
    async with served_control_plane(
        database_url=database_url,
        broker_url=mosquitto.url,
        release_keys=public_key_text(key.public_key()),
        release_dir=tmp_path / "releases",
    ) as served:

        async def run(bundle: Path, token: str) -> Result:
            args = ["publish", str(bundle), "--url", served.url, "--token", token]
            return await asyncio.to_thread(CliRunner().invoke, app, args)

        first = await run(good, served.admin_token)
        again = await run(good, served.admin_token)
        refused = await run(tampered, served.admin_token)
        stranger = await run(good, "sft_not-a-token")
        async with served.client() as admin:
            versions = [r["version"] for r in (await admin.get("/api/releases")).json()]
    assert first.exit_code == 0, first.output
    assert first.output.startswith("published: 3.0.0 sha256 ")
    assert again.exit_code == 0
    assert again.output.startswith("already published (same bytes): 3.0.0")
    assert refused.exit_code == 1
    assert "REFUSED 422: sha256_mismatch" in refused.output
    assert stranger.exit_code == 1
    assert "REFUSED 401" in stranger.output
    assert versions == ["3.0.0"]
