"""The bundle's download against a real HTTP server with Range: resume, refusals, a full disk."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from edge.agent.releases.download import DiskWriteFailed, DownloadFailed, download_bundle
from protocols.release_bundle import BundleRefused

from .bundles import BundleServer, serving

BODY = os.urandom(300_000)
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "served" / "b.sfb"
    path.parent.mkdir()
    path.write_bytes(BODY)
    return path


async def fetch(
    server: BundleServer, dest: Path, *, sha256: str = SHA, name: str = "b.sfb"
) -> Path:
    return await download_bundle(
        url=f"{server.url}/{name}",
        dest=dest,
        sha256=sha256,
        auth=None,
        verify=True,
        attempts=3,
        backoff_s=0.0,
    )


async def test_a_download_cut_mid_body_resumes_from_the_bytes_it_has(
    tmp_path: Path, bundle: Path
) -> None:
    server = BundleServer(files={"b.sfb": bundle}, cut={"b.sfb": 1})
    async with serving(server):
        got = await fetch(server, tmp_path / "dl" / "b.sfb")

    assert got.read_bytes() == BODY
    assert [asked for _, asked in server.requests] == [None, f"bytes={len(BODY) // 2}-"]
    assert not got.with_name("b.sfb.part").exists()


async def test_a_download_that_never_completes_is_refused_as_truncated(
    tmp_path: Path, bundle: Path
) -> None:
    server = BundleServer(files={"b.sfb": bundle}, cut={"b.sfb": 99})
    async with serving(server):
        with pytest.raises(BundleRefused) as refused:
            await fetch(server, tmp_path / "dl" / "b.sfb")

    assert refused.value.reason == "truncated"
    assert len(server.requests) == 3


async def test_a_bundle_whose_digest_is_not_the_named_one_is_refused_and_dropped(
    tmp_path: Path, bundle: Path
) -> None:
    server = BundleServer(files={"b.sfb": bundle})
    dest = tmp_path / "dl" / "b.sfb"
    async with serving(server):
        with pytest.raises(BundleRefused) as refused:
            await fetch(server, dest, sha256="0" * 64)

    assert refused.value.reason == "bundle_sha256_mismatch"
    assert not dest.exists()
    assert not dest.with_name("b.sfb.part").exists()


async def test_a_part_file_longer_than_the_bundle_starts_over(tmp_path: Path, bundle: Path) -> None:
    dest = tmp_path / "dl" / "b.sfb"
    dest.parent.mkdir()
    dest.with_name("b.sfb.part").write_bytes(b"x" * (len(BODY) + 10))  # another bundle's
    server = BundleServer(files={"b.sfb": bundle})
    async with serving(server):
        got = await fetch(server, dest)

    assert got.read_bytes() == BODY


async def test_a_disk_that_refuses_writes_fails_the_download_by_name(
    tmp_path: Path, bundle: Path
) -> None:
    dest = tmp_path / "dl" / "b.sfb"
    dest.parent.mkdir()
    dest.with_name("b.sfb.part").symlink_to("/dev/full")  # every write: no space left
    server = BundleServer(files={"b.sfb": bundle})
    async with serving(server):
        with pytest.raises(DiskWriteFailed, match="No space left"):
            await fetch(server, dest)


async def test_a_bundle_the_server_does_not_have_fails_without_retrying(
    tmp_path: Path, bundle: Path
) -> None:
    server = BundleServer(files={"b.sfb": bundle})
    async with serving(server):
        with pytest.raises(DownloadFailed, match="HTTP 404"):
            await fetch(server, tmp_path / "dl" / "b.sfb", name="other.sfb")

    assert len(server.requests) == 1
