"""The app slots and their state file: which slot runs, which is good, which is on trial.

How it works (RAUC's model, for the app rather than the OS): two slots, ``<app_dir>/slots/a``
and ``<app_dir>/slots/b``, each a virtual environment holding one release. ``slots.json`` is the
truth, always replaced whole by rename (write, fsync, rename, fsync the directory), so a power cut
leaves the old or the new file, never half of one:

    active      the slot the register runs from (None: the package the image installed)
    committed   the slot last marked good (None: the image's)
    trying      the slot switched to and not marked good yet; on boot it means the health
                window never finished, and the agent goes back to ``committed``
    previous    where the last switch came from
    versions    the release each slot holds
    attempt     the release in progress (its state and deadline), so a restarted agent resumes
    last_failed the desire that failed last: never retried until the cloud sends another

``<app_dir>/current`` is a symbolic link to the active slot (what :mod:`edge.agent.process`
starts the register from), replaced by rename after the state file.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

SlotName = Literal["a", "b"]
SLOTS: tuple[SlotName, SlotName] = ("a", "b")
STATE_FILE = "slots.json"


@dataclass(frozen=True)
class Attempt:
    """The release in progress on this appliance."""

    key: str  # which desire (sha256 of its message): a redelivery is the same desire
    version: str
    rollout: str | None
    state: str  # a protocols.release_bundle.ReleaseState
    since: float  # epoch seconds
    deadline: float  # epoch seconds: past it, the state timed out
    slot: SlotName | None = None  # the slot being installed or tried


@dataclass(frozen=True)
class SlotState:
    """The content of ``slots.json``."""

    active: SlotName | None = None
    committed: SlotName | None = None
    trying: SlotName | None = None
    previous: SlotName | None = None
    versions: dict[str, str] = field(default_factory=dict)
    attempt: Attempt | None = None
    last_failed: str | None = None

    @property
    def inactive(self) -> SlotName:
        """The slot a new release is installed into: never the active or the committed one."""
        for name in SLOTS:
            if name not in (self.active, self.committed):
                return name
        return "b" if self.active == "a" else "a"  # pragma: no cover - two slots, one active

    def version_of(self, slot: SlotName | None, *, image_version: str) -> str:
        """The release a slot holds (None: the image's package)."""
        return image_version if slot is None else self.versions.get(slot, "")

    def to_json(self) -> dict[str, Any]:
        """The file's document."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SlotState:
        """From the file's document (a key this version does not know is ignored)."""
        attempt = raw.get("attempt")
        known = {k: raw[k] for k in ("active", "committed", "trying", "previous") if k in raw}
        return cls(
            **known,
            versions=dict(raw.get("versions") or {}),
            attempt=Attempt(**attempt) if isinstance(attempt, dict) else None,
            last_failed=raw.get("last_failed"),
        )


class SlotStore:
    """Reads and replaces ``slots.json`` and the ``current`` link of one app directory."""

    def __init__(self, app_dir: Path) -> None:
        self.app_dir = app_dir
        self.path = app_dir / STATE_FILE

    def slot_dir(self, slot: SlotName) -> Path:
        """Where a slot's virtual environment lives."""
        return self.app_dir / "slots" / slot

    def load(self) -> SlotState:
        """The state; an absent file is the image's package, never switched."""
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return SlotState()
        return SlotState.from_json(raw)

    def save(self, state: SlotState) -> SlotState:
        """Replace the file whole (rename), then point ``current`` at the active slot."""
        self.app_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{STATE_FILE}.new")
        with temporary.open("w") as out:
            json.dump(state.to_json(), out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(self.path)
        self._sync_directory()
        self.point_current(state.active)
        return state

    def update(self, **changes: Any) -> SlotState:
        """Load, change, save."""
        return self.save(replace(self.load(), **changes))

    def point_current(self, slot: SlotName | None) -> None:
        """``current`` → ``slots/<slot>`` (by rename), or no link for the image's package."""
        current = self.app_dir / "current"
        if slot is None:
            with contextlib.suppress(FileNotFoundError):
                current.unlink()
            return
        temporary = self.app_dir / ".current.new"
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        temporary.symlink_to(Path("slots") / slot)
        temporary.replace(current)
        self._sync_directory()

    def _sync_directory(self) -> None:
        fd = os.open(self.app_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
