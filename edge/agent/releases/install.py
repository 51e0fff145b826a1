"""A verified bundle into an app slot: extract, make the slot's venv, install the app's wheels.

How it works: :func:`unpack_verified` streams the bundle through
:func:`protocols.release_bundle.read_bundle` (signature first, then each wheel's size and sha256)
into ``<staging>/wheels/``; nothing reaches a slot unless the whole bundle verified. Then
:func:`install_into_slot` empties the inactive slot and makes it a virtual environment with
``--system-site-packages`` (the image's pinned dependencies), plus a ``.pth`` naming the agent's
own site directories (the image's Python is itself a venv, whose packages ``--system-site-
packages`` would not reach), and installs the bundle's wheels with ``pip install --no-index
--no-deps``: the bundle carries the app, the image provides everything it imports. The slot's
own site-packages come first on ``sys.path``, so the slot's app wins over the image's.
"""

from __future__ import annotations

import asyncio
import shutil
import site
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

from protocols import release_bundle as rb

#: How a verified release's wheels become a slot: :func:`install_into_slot` unless the agent is
#: given another (a test fleet of many appliances on one machine installs each distinct release
#: once with it and hardlinks that slot into the others).
Installer = Callable[[Path, list[Path]], Awaitable[None]]


class InstallFailed(Exception):  # noqa: N818 - named for what the operator is told
    """The release could not be installed; ``reason`` is a refusal reason (disk_write_failed…)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def unpack_verified(bundle: Path, staging: Path, trusted: rb.TrustedKeys) -> rb.VerifiedBundle:
    """Verify ``bundle`` and leave its wheels in ``staging/wheels``; removed again on refusal."""
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "wheels").mkdir(parents=True)
    opened: list[IO[bytes]] = []

    def sink(entry: rb.BundleFile) -> IO[bytes]:
        out = (staging / entry.path).open("wb")
        opened.append(out)
        return out

    try:
        with bundle.open("rb") as stream:
            verified = rb.read_bundle(stream, trusted, sink=sink)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        for out in opened:
            out.close()
    return verified


def image_site_directories() -> list[str]:
    """The agent's own site directories: where the image's pinned dependencies live."""
    return [p for p in site.getsitepackages() if Path(p).is_dir()]


async def _run(*argv: str, what: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        text = output.decode(errors="replace").strip()[-600:]
        reason = "disk_write_failed" if "No space left" in text else "install_failed"
        raise InstallFailed(reason, f"{what} failed (exit {process.returncode}): {text}")


async def install_into_slot(slot_dir: Path, wheels: list[Path]) -> None:
    """Make ``slot_dir`` a fresh venv holding exactly these wheels (the old content is gone)."""
    try:
        await asyncio.to_thread(shutil.rmtree, slot_dir, True)
        slot_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InstallFailed("disk_write_failed", f"cannot empty {slot_dir}: {err}") from err
    python = sys.executable
    await _run(
        python, "-m", "venv", "--without-pip", "--system-site-packages", str(slot_dir),
        what="making the slot's venv",
    )  # fmt: skip
    slot_python = slot_dir / "bin" / "python"
    purelib = await _slot_purelib(slot_python)
    try:
        (purelib / "storefleet-image.pth").write_text("\n".join(image_site_directories()) + "\n")
    except OSError as err:
        raise InstallFailed("disk_write_failed", f"cannot write into {purelib}: {err}") from err
    await _run(
        python, "-m", "pip", "--python", str(slot_python), "install", "-q",
        "--no-index", "--no-deps", "--no-compile", "--disable-pip-version-check",
        *map(str, wheels),
        what="pip install of the release",
    )  # fmt: skip


async def _slot_purelib(slot_python: Path) -> Path:
    process = await asyncio.create_subprocess_exec(
        str(slot_python),
        "-c",
        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise InstallFailed("install_failed", f"{slot_python} does not run")
    return Path(output.decode().strip())
