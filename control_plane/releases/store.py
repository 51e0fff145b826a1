"""Where bundles live on disk: one file per distinct content, named by its sha256.

How it works: an upload streams into a temporary file in the store's directory (bounded in
size, hashed as it arrives); once the bundle verified and its row committed, :meth:`keep` renames
it to ``<sha256>.sfb``, atomically. Two versions can never share bytes (the manifest names the
version), so a content name is also a release's one file. A crash between commit and rename
leaves a row without its file: :meth:`path` answers None and the download says so (404), and
publishing the same bytes again repairs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from control_plane.releases.errors import BundleTooLarge


@dataclass(frozen=True, slots=True)
class Upload:
    """A received upload: its temporary file, sha256 and size."""

    path: Path
    sha256: str
    size: int


class BundleStore:
    """Bundles on disk under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, sha256: str) -> Path | None:
        """The bundle with that content, or None when it is not on disk."""
        path = self.directory / f"{sha256}.sfb"
        return path if path.is_file() else None

    async def receive(self, chunks: AsyncIterator[bytes], *, max_bytes: int) -> Upload:
        """Stream ``chunks`` into a temporary file; :class:`BundleTooLarge` past ``max_bytes``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.directory, prefix=".upload-", suffix=".part")
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(handle, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise BundleTooLarge(f"the bundle is over {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            os.unlink(name)
            raise
        return Upload(path=Path(name), sha256=digest.hexdigest(), size=size)

    def keep(self, upload: Upload) -> Path:
        """Move a verified upload to its content name (replacing a same-content file)."""
        target = self.directory / f"{upload.sha256}.sfb"
        upload.path.replace(target)
        return target

    @staticmethod
    def discard(upload: Upload) -> None:
        """Forget an upload that was refused or is already kept."""
        with contextlib.suppress(FileNotFoundError):
            upload.path.unlink()
