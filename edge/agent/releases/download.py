"""The bundle's download: HTTP with Range resume, then the whole file's size and sha256.

How it works: bytes go to ``<dest>.part`` as they arrive. Every attempt asks for
``Range: bytes=<have>-``; a ``206`` whose ``Content-Range`` starts there is appended, a ``200`` (a
server without ranges) starts over, a ``416`` means the part file is as long as the bundle or
longer (checked by digest, else started over). A connection that ends mid-body is resumed, up to
``attempts`` times with a short backoff. The download is whole when its size is the bundle's
(``Content-Range`` total, or ``Content-Length``), and good only when its sha256 is the one the
release names; then ``.part`` is renamed to ``dest``. The device proves who it is with its
assertion (:class:`edge.enrolment.device_auth.DeviceAuth`), handed in as an ``httpx.Auth``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

import httpx

from edge.agent.releases import metrics
from protocols.release_bundle import CHUNK, BundleRefused

log = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class DiskWriteFailed(OSError):  # noqa: N818 - named for what the operator is told
    """The appliance could not write the bundle (disk full, read-only, failing)."""


class DownloadFailed(Exception):  # noqa: N818 - named for what the operator is told
    """The server refused the download (an HTTP status that resending will not change)."""


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


async def download_bundle(
    *,
    url: str,
    dest: Path,
    sha256: str,
    auth: httpx.Auth | None,
    verify: ssl.SSLContext | bool,
    attempts: int = 6,
    timeout_s: float = 30.0,
    backoff_s: float = 0.2,
    on_resume: Callable[[int], None] = lambda _have: None,
) -> Path:
    """``dest`` holding the bundle whose sha256 is ``sha256``; or a refusal/failure."""
    if _already_there(dest, sha256):
        return dest
    part = dest.with_name(dest.name + ".part")
    async with httpx.AsyncClient(auth=auth, verify=verify, timeout=timeout_s) as client:
        for attempt in range(1, attempts + 1):
            have = _size(part)
            if attempt > 1:
                metrics.DOWNLOAD_RESUMES.inc()
                on_resume(have)
                log.info("bundle download resumes at byte %d (attempt %d)", have, attempt)
            try:
                total = await _one_attempt(client, url=url, part=part, have=have)
            except httpx.TransportError as err:
                log.warning("bundle download interrupted (%s); resuming", err)
                await asyncio.sleep(backoff_s * attempt)
                continue
            if total is None or _size(part) < total:
                await asyncio.sleep(backoff_s * attempt)
                continue
            if file_sha256(part) != sha256:
                _discard(part)
                raise BundleRefused(
                    "bundle_sha256_mismatch",
                    f"{url}: the downloaded bundle's sha256 is not {sha256}",
                )
            part.replace(dest)
            return dest
    have = _size(part)
    raise BundleRefused(
        "truncated", f"{url}: the download ended early {attempts} times (kept {have} bytes)"
    )


async def _one_attempt(client: httpx.AsyncClient, *, url: str, part: Path, have: int) -> int | None:
    """One GET from ``have``; returns the bundle's total size when the server said it."""
    # identity: a Range counts bytes of the file itself, never of a compressed form of it
    headers = {"Accept-Encoding": "identity"} | ({"Range": f"bytes={have}-"} if have else {})
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code == httpx.codes.REQUESTED_RANGE_NOT_SATISFIABLE:
            # the part file is as long as the bundle (or longer: a different bundle); the
            # digest decides, and a wrong one is started over
            total = _total_from_416(response)
            if total is not None and total == have:
                return total
            _discard(part)
            return None
        if response.status_code == httpx.codes.PARTIAL_CONTENT:
            match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
            if match is None or int(match[1]) != have:
                _discard(part)  # not the range asked for: start over
                return None
            total = None if match[3] == "*" else int(match[3])
            mode = "ab"
        elif response.status_code == httpx.codes.OK:
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        elif response.status_code >= httpx.codes.INTERNAL_SERVER_ERROR:
            return None  # the server's trouble: try again
        else:
            raise DownloadFailed(f"{url}: HTTP {response.status_code}")
        try:
            with _open(part, mode) as out:
                # as they arrive: a chunk size would hold back bytes an interruption then loses
                async for chunk in response.aiter_raw():
                    out.write(chunk)
                out.flush()
        except OSError as err:
            raise DiskWriteFailed(err.errno, f"cannot write {part}: {err.strerror}") from err
        return total


# small, local file operations: blocking is fine on the appliance's own disk


def _already_there(dest: Path, sha256: str) -> bool:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DiskWriteFailed(err.errno, f"cannot make {dest.parent}: {err.strerror}") from err
    return dest.exists() and file_sha256(dest) == sha256


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _open(path: Path, mode: str) -> BinaryIO:
    return cast("BinaryIO", path.open(mode))


def _total_from_416(response: httpx.Response) -> int | None:
    match = re.match(r"^bytes \*/(\d+)$", response.headers.get("content-range", ""))
    return int(match[1]) if match else None
