"""``os.install``: a local OS image checked by the agent and handed to the image's root helper.

Why this way: the agent runs unprivileged (storefleet-agent.service: its own user, no
capabilities, a read-only system), and writing a system slot and the boot loader's entries is
root's. So the agent does what it may — finds the image under ``<data_dir>/os-images``, checks
its size and sha256 against the command, refuses a bad one with a clear answer (counted in
``storefleet_agent_os_install_refused``) — and writes a request file
(:func:`protocols.os_install.request_text`) into ``<data_dir>/os-install/``. The image's
``storefleet-os-install.path`` (root) sees it and starts ``libexec/os-install``, which checks the
request again, has ``slot install`` write the inactive slot, compare the slot's bytes with the
sha256 and arm one boot try, and reboots into it when the command asked to.

The command answers once the request is handed over (writing a slot takes minutes and the
session's command loop must not wait on it). What follows is reported by
:class:`edge.agent.os_update.OsUpdateReporter`: the helper's outcome (``installing``, or
``failed`` with its reason) from ``/run/storefleet-os/install-result``, then the boot loader's
(``confirming``, then ``succeeded`` or ``reverted``) as ``os.update`` events.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
import time
import uuid
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from edge.agent.commands import CommandArgs, CommandRefused
from protocols.os_install import (
    IMAGES_DIR,
    REQUEST_DIR,
    REQUEST_FILE,
    VERITY_SUFFIX,
    OsInstallArgs,
    request_text,
)

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024

REFUSED = Counter(
    "storefleet_agent_os_install_refused",
    "os.install commands refused by the agent, by reason (missing, size, sha256, verity, busy,"
    " no_slots)",
    ["reason"],
)
ABANDONED = Counter(
    "storefleet_agent_os_install_abandoned",
    "os.install requests the image's root helper never took, removed so the next can go",
)
#: The root helper takes a request within a second of it being written (its path unit); one
#: still there after this long was never taken, and must not block every later install.
PENDING_LIMIT_S = 600.0

REQUESTED = Counter(
    "storefleet_agent_os_install_requested",
    "os.install requests handed to the image's root helper",
)


class OsInstallCommandArgs(CommandArgs, OsInstallArgs):
    """``os.install``'s body as the command runner validates it (protocols.os_install)."""


class OsInstallRefusedError(CommandRefused):
    """An image the agent will not hand over; ``reason`` is the metric's label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class OsInstaller:
    """Checks an image in ``<data_dir>/os-images`` and requests its install from root."""

    def __init__(self, *, data_dir: Path, boot_state: Path) -> None:
        self.images = data_dir / IMAGES_DIR
        self.requests = data_dir / REQUEST_DIR
        self.boot_state = boot_state

    def _pending(self) -> bool:
        """Whether a request waits for the root helper; one it never took is removed."""
        try:
            age = time.time() - self.request.stat().st_mtime
        except FileNotFoundError:
            return False
        if age < PENDING_LIMIT_S:
            return True
        ABANDONED.inc()
        log.warning(
            "os.install: the request written %.0f s ago was never taken by the root helper;"
            " removed so this install can go (check 'systemctl status storefleet-os-install.path'"
            " on the appliance)",
            age,
        )
        self.request.unlink(missing_ok=True)
        return False

    @property
    def request(self) -> Path:
        return self.requests / REQUEST_FILE

    async def install(self, args: OsInstallArgs) -> dict[str, Any]:
        """Check the image, write the request; the command's result. Refusals raise."""
        try:
            return await self._install(args)
        except OsInstallRefusedError as err:
            REFUSED.labels(err.reason).inc()
            log.error(
                "os.install %s refused (%s): %s; send the command again once the image is right",
                args.image,
                err.reason,
                err,
            )
            raise

    async def _install(self, args: OsInstallArgs) -> dict[str, Any]:
        if not self.boot_state.exists():
            raise OsInstallRefusedError(
                "no_slots",
                f"this appliance reports no OS slots ({self.boot_state} is absent: not the"
                " appliance image, or storefleet-os-state.service did not run)",
            )
        image = self.images / args.image
        found = _regular_file(image)
        if found is None:
            raise OsInstallRefusedError(
                "missing", f"no OS image {args.image!r} in {self.images} (copy it there first)"
            )
        if found.st_size != args.size:
            raise OsInstallRefusedError(
                "size",
                f"OS image {args.image!r} is {found.st_size} bytes, the command says {args.size}"
                " (a partial copy?)",
            )
        sidecar = image.with_name(image.name + VERITY_SUFFIX)
        if _regular_file(sidecar) is None:
            raise OsInstallRefusedError(
                "verity",
                f"OS image {args.image!r} has no dm-verity root hash beside it ({sidecar.name},"
                " as images/build writes system-<arch>.verity): this system installs only"
                " verified systems",
            )
        if self._pending():
            raise OsInstallRefusedError(
                "busy", "an OS install is already under way (its request is still pending)"
            )
        digest = await asyncio.to_thread(_sha256, image)
        if digest != args.sha256:
            raise OsInstallRefusedError(
                "sha256",
                f"OS image {args.image!r} has sha256 {digest}, the command says {args.sha256}",
            )
        self.requests.mkdir(parents=True, exist_ok=True)
        install = uuid.uuid4().hex[:16]  # the helper's outcome names it (os.update's detail)
        staged = self.requests / f".{REQUEST_FILE}.{install}"
        staged.write_text(request_text(args, install=install))
        staged.replace(self.request)  # the path unit fires on the whole file only
        REQUESTED.inc()
        log.info(
            "os.install %s (%d bytes, sha256 ok): handed to the root helper%s",
            args.image,
            args.size,
            ", which reboots into it" if args.reboot else "",
        )
        return {
            "requested": True,
            "install": install,
            "image": args.image,
            "bytes": args.size,
            "reboot": args.reboot,
        }


def _regular_file(path: Path) -> os.stat_result | None:
    """The file's stat when it is a regular file itself (not a link), else None."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        return None
    return found if stat.S_ISREG(found.st_mode) else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
