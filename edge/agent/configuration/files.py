"""The applied configuration on disk: one file, replaced atomically; the one before kept beside it.

How it works: ``<data_dir>/config/applied.json`` holds ``{"version", "hashes", "applied_at",
"doc"}`` where ``doc`` is the normalised document (defaults filled in, as
:func:`protocols.store_config.normalised` gives it) and ``hashes`` its per-key sha256. It is
written to a temporary sibling, fsynced, renamed over the old one, and the directory fsynced: a
power cut or a SIGKILL mid-write leaves the old document or the new one, never a mix. Before the
new one replaces it, the old one is copied to ``previous.json`` (the same way), so an operator
can see what ran before. The agent writes; the register reads (:func:`read_applied`).

The agent at rest reads only the head of the file (:func:`read_head`: version and hashes, which
it validated before writing them) and imports the schema (:mod:`protocols.store_config`, ~1.8 MB
of validators) when a configuration first has to be validated or compared: the agent's memory
goal is 40 MB (``bench/appliance.py``), and most days no configuration arrives.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from protocols.store_config import StoreConfig

APPLIED_FILE = "applied.json"
PREVIOUS_FILE = "previous.json"
FILE_MODE = 0o640


class AppliedUnreadable(ValueError):  # noqa: N818 - named for what the reader is told
    """The applied file exists but cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class AppliedConfig:
    """A configuration the appliance runs: its version, the validated document, its hashes."""

    version: int
    config: StoreConfig
    hashes: dict[str, str]
    applied_at: str = ""

    @classmethod
    def of(cls, version: int, config: StoreConfig) -> AppliedConfig:
        """A newly accepted version, stamped now."""
        from protocols.store_config import key_hashes  # loaded with the schema (docstring)

        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(version=version, config=config, hashes=key_hashes(config), applied_at=stamp)

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        from protocols.store_config import normalised

        return {
            "version": self.version,
            "applied_at": self.applied_at,
            "hashes": self.hashes,
            "doc": normalised(self.config),
        }


def config_dir(data_dir: Path) -> Path:
    """Where the configuration files live in the appliance's data directory."""
    return data_dir / "config"


def applied_path(data_dir: Path) -> Path:
    """The applied document the register reads."""
    return config_dir(data_dir) / APPLIED_FILE


@dataclass(frozen=True, slots=True)
class AppliedHead:
    """What the state reports of the applied configuration, read without the schema."""

    version: int
    hashes: dict[str, str]


def _read_raw(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise AppliedUnreadable(f"{path}: cannot be read ({err})") from err
    if not isinstance(raw, dict) or not isinstance(raw.get("version"), int):
        raise AppliedUnreadable(f"{path}: not an applied configuration (no version)")
    return raw


def read_head(data_dir: Path) -> AppliedHead | None:
    """Version and per-key hashes of the applied file (the agent validated it before writing)."""
    path = applied_path(data_dir)
    raw = _read_raw(path)
    if raw is None:
        return None
    hashes = raw.get("hashes")
    if not isinstance(hashes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in hashes.items()
    ):
        raise AppliedUnreadable(f"{path}: no per-key hashes")
    return AppliedHead(version=raw["version"], hashes=dict(hashes))


def read_applied(data_dir: Path) -> AppliedConfig | None:
    """The applied configuration, None when there is none yet, else :class:`AppliedUnreadable`."""
    from protocols.store_config import StoreConfigRefused, key_hashes, parse_store_config

    path = applied_path(data_dir)
    raw = _read_raw(path)
    if raw is None:
        return None
    try:
        config = parse_store_config(raw.get("doc"))
    except StoreConfigRefused as err:
        raise AppliedUnreadable(f"{path}: {err}") from err
    return AppliedConfig(
        version=raw["version"],
        config=config,
        hashes=key_hashes(config),
        applied_at=str(raw.get("applied_at", "")),
    )


def write_applied(data_dir: Path, applied: AppliedConfig) -> None:
    """Replace the applied document atomically, keeping the old one as ``previous.json``."""
    directory = config_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    current = directory / APPLIED_FILE
    with contextlib.suppress(FileNotFoundError):
        _write_atomic(directory / PREVIOUS_FILE, current.read_bytes())
    # compact: json's C encoder (an indent takes the pure-Python one, most of a write's time);
    # an operator reads it with jq
    body = json.dumps(applied.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    _write_atomic(current, body.encode())


def _write_atomic(path: Path, data: bytes) -> None:
    """Temporary sibling, fsync, rename over ``path``, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
