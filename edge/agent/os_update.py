"""The appliance's OS slot as the fleet sees it: which system runs, and how its last update ended.

Why here: an OS update is tried by the boot loader, not by the agent (systemd-boot's boot
counting on the amd64 twin, the Raspberry Pi firmware's tryboot on the board; images/README.md).
When the tried system fails its health gate the machine comes back on the old slot by itself,
and nothing but the agent can tell the fleet. A revert is a FAILURE, never a success: an
appliance that reports "succeeded" while it runs the old system is the bug class of hawkBit
#3185 and rauc-hawkbit-updater #161.

How it works: the image's ``slot state`` (root, ``storefleet-os-state.service`` before the agent
starts, and again once the boot is committed or not) writes the boot state file, one
``key=value`` a line (:class:`OsBoot`; the agent cannot read the boot loader's files itself).
:class:`OsUpdateReporter` reads it at start and whenever it changes, and

* puts an ``os`` entry in the retained ``state`` (slot, version, the last update's outcome; its
  ``error`` says a reverted update, so the control plane lists it among the device's problems);
* emits one ``os.update`` event per outcome of an install (``confirming`` while its one boot is
  under way, then ``succeeded`` or ``reverted``), with release_bundle's ``ReleaseProgress`` as
  the body. What was reported is kept in ``<data_dir>/os-update.json``, so a restart or the next
  boot does not report the same revert again (the boot loader keeps the failed entry until the
  next install).

An install the agent asked for (``os.install``, :mod:`edge.agent.os_install`) is carried out by
the image's root helper, which writes its outcome beside the boot state (``install-result``,
the same ``key=value`` lines: ``id``, ``image``, ``state`` ``installed`` or ``failed``, ``slot``,
``version``, ``detail``); it is said once as ``os.update`` ``installing`` (written, tried at the
next boot) or ``failed`` (with the helper's reason; the running system is untouched).

Off the image (development, the tests' appliances) there is no such file: no ``os`` entry.
The event's body model is imported when the first event is said: protocols.release_bundle
brings cryptography, which the agent at rest does not carry (:mod:`edge.agent.process`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from protocols.vocabulary import EventKind

log = logging.getLogger(__name__)

POLL_S = 5.0
#: Installs remembered as reported (the newest); far more than a box sees between two reads.
KEEP = 20
RECORD = "os-update.json"
#: The root helper's outcome of an ``os.install``, beside the boot state file.
INSTALL_RESULT = "install-result"

OUTCOMES = Counter(
    "storefleet_agent_os_update_outcomes",
    "OS updates seen on this appliance, by state (confirming, succeeded, reverted)",
    ["state"],
)
UNREADABLE = Counter(
    "storefleet_agent_os_boot_state_unreadable",
    "Times the image's boot state file could not be read (the os entry is left out)",
)

Emit = Callable[[str, dict[str, Any]], None]
#: release_bundle.ReleaseState's values this module says
CONFIRMING, SUCCEEDED, REVERTED = "confirming", "succeeded", "reverted"
INSTALLING, FAILED = "installing", "failed"


@dataclass(frozen=True)
class OsBoot:
    """What ``slot state`` wrote for this boot (images/rootfs/usr/lib/storefleet/libexec/slot)."""

    slot: str
    version: str
    boot: str  # "committed", or "trying": an update's one boot, not committed yet
    attempt: str = ""  # the running slot's install ("" for the factory slot)
    reverted: str = ""  # a slot whose try failed
    reverted_version: str = ""
    reverted_attempt: str = ""

    @property
    def trying(self) -> bool:
        return self.boot == "trying"


class BootStateUnreadableError(ValueError):
    """The boot state file is there but not what ``slot state`` writes."""


def parse_boot_state(text: str) -> OsBoot:
    """The file's ``key=value`` lines as an :class:`OsBoot`; unknown keys are ignored (a newer
    image may say more), a missing slot or an unknown boot word is refused."""
    values = _key_values(text)
    known = {f.name for f in fields(OsBoot)}
    given = {k: v for k, v in values.items() if k in known}
    given |= {
        "slot": given.get("slot", ""),
        "version": given.get("version") or "unknown",
        "boot": given.get("boot", ""),
    }
    boot = OsBoot(**given)
    if boot.slot not in {"a", "b"}:
        raise BootStateUnreadableError(f"slot={boot.slot!r} is not a or b")
    if boot.boot not in {"committed", "trying"}:
        raise BootStateUnreadableError(f"boot={boot.boot!r} is neither committed nor trying")
    return boot


def _key_values(text: str, *, limit: int = 64) -> dict[str, str]:
    """``key=value`` lines as a dict, each value cut to ``limit`` characters."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()[:limit]
    return values


def read_boot_state(path: Path) -> OsBoot | None:
    """This boot's state, or None when the file is absent (not on the image)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    return parse_boot_state(text)


class OsUpdateReporter:
    """Reads the boot state file and reports each OS update's outcome once."""

    def __init__(
        self,
        *,
        boot_state: Path,
        data_dir: Path,
        emit: Emit,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.path = boot_state
        self.record = data_dir / RECORD
        self.emit = emit
        self.on_change = on_change
        self.boot: OsBoot | None = None
        self._seen: tuple[int, int] | None = None  # the file's (mtime_ns, size) last read
        self.install_result = boot_state.parent / INSTALL_RESULT
        self._install_seen: tuple[int, int] | None = None
        self.check()

    # -- what the rest of the agent sees --------------------------------------------------------

    def health(self) -> dict[str, Any] | None:
        """The ``os`` entry of the state, or None off the image."""
        boot = self.boot
        if boot is None:
            return None
        update, update_slot, update_version, error = "", "", "", None
        if boot.reverted:
            update, update_slot, update_version = "reverted", boot.reverted, boot.reverted_version
            error = (
                f"OS update {boot.reverted_version} reverted: slot {boot.reverted} did not pass"
                f" its boot health gate; running slot {boot.slot} ({boot.version})"
            )
        elif boot.trying:
            update, update_slot, update_version = "confirming", boot.slot, boot.version
        elif boot.attempt:
            update, update_slot, update_version = "succeeded", boot.slot, boot.version
        return {
            "device": "os",
            "kind": "os",
            "connected": True,
            "error": error,
            "detail": {
                "slot": boot.slot,
                "version": boot.version,
                "boot": boot.boot,
                "update": update,
                "update_slot": update_slot,
                "update_version": update_version,
            },
        }

    # -- reading and reporting ------------------------------------------------------------------

    async def run(self) -> None:
        """Look at the file every ``POLL_S`` (it changes once or twice a boot); until cancelled."""
        while True:
            await asyncio.sleep(POLL_S)
            self.check()

    def check(self) -> None:
        """Read the files if they changed; report what they show that was not reported yet."""
        self._check_install()
        self._check_boot()

    def _check_install(self) -> None:
        try:
            stat = self.install_result.stat()
        except FileNotFoundError:
            return
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen == self._install_seen:
            return
        self._install_seen = seen
        try:
            text = self.install_result.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            UNREADABLE.inc()
            log.error("os: cannot read the install outcome %s (%s)", self.install_result, err)
            return
        values = _key_values(text, limit=400)
        install, state = values.get("id", ""), values.get("state", "")
        if not install or state not in {"installed", "failed"}:
            return  # the helper is still writing the slot, or an older image's words
        said = INSTALLING if state == "installed" else FAILED
        key = f"install:{install}"
        reported = self._reported()
        if reported.get(key) == said:
            return
        image = values.get("image", "") or "unknown"
        version = values.get("version", "") or image
        detail = values.get("detail", "")
        if said == FAILED:
            detail = f"the OS image {image} was not installed: {detail or 'see the helper log'}"
            log.error(
                "os: %s; the running system is unchanged (journalctl -u"
                " storefleet-os-install.service on the appliance)",
                detail,
            )
        else:
            slot = values.get("slot", "") or "the other slot"
            detail = detail or f"{image} written to slot {slot}; tried once at the next boot"
            log.info("os: %s", detail)
        self._say(reported, key, version, said, detail)

    def _check_boot(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            boot = read_boot_state(self.path)
        except (OSError, BootStateUnreadableError) as err:
            UNREADABLE.inc()
            log.error(
                "os: cannot read the boot state %s (%s); the OS slot is not reported until the"
                " image's storefleet-os-state.service writes it again (systemctl status it)",
                self.path,
                err,
            )
            return
        if boot is None:
            return
        changed = boot != self.boot
        self.boot = boot
        self._report(boot)
        if changed:
            self.on_change()

    def _report(self, boot: OsBoot) -> None:
        reported = self._reported()
        if boot.reverted and reported.get(boot.reverted_attempt) != REVERTED:
            detail = (
                f"slot {boot.reverted}'s one boot did not pass the health gate (the system did"
                f" not start, or its register did not answer); the boot loader went back to"
                f" slot {boot.slot} ({boot.version})"
            )
            log.error(
                "os: OS update %s reverted: %s; fix the image and install it again",
                boot.reverted_version,
                detail,
            )
            self._say(
                reported,
                boot.reverted_attempt,
                boot.reverted_version,
                REVERTED,
                detail,
            )
        if not boot.attempt:
            return
        if boot.trying and boot.attempt not in reported:
            detail = f"slot {boot.slot} booted once; committed when the register is healthy"
            self._say(reported, boot.attempt, boot.version, CONFIRMING, detail)
        elif not boot.trying and reported.get(boot.attempt) != SUCCEEDED:
            detail = f"slot {boot.slot} passed its boot health gate and is committed"
            log.info("os: OS update %s committed in slot %s", boot.version, boot.slot)
            self._say(reported, boot.attempt, boot.version, SUCCEEDED, detail)

    def _say(
        self,
        reported: dict[str, str],
        attempt: str,
        version: str,
        state: str,
        detail: str,
    ) -> None:
        from protocols.release_bundle import ReleaseState, progress_body  # see the docstring

        body = progress_body(
            rollout=None, version=version or "unknown", state=ReleaseState(state), detail=detail
        )
        self.emit(EventKind.OS_UPDATE, body)
        OUTCOMES.labels(state).inc()
        reported.pop(attempt, None)
        reported[attempt] = state
        self._keep(reported)

    def _reported(self) -> dict[str, str]:
        """Install → the last state reported for it (oldest first)."""
        try:
            raw = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return {}
        found = raw.get("reported") if isinstance(raw, dict) else None
        if not isinstance(found, dict):
            return {}
        return {str(k): str(v) for k, v in found.items()}

    def _keep(self, reported: dict[str, str]) -> None:
        newest = dict(list(reported.items())[-KEEP:])
        self.record.parent.mkdir(parents=True, exist_ok=True)
        staged = self.record.with_suffix(".tmp")
        staged.write_text(json.dumps({"reported": newest}, indent=1) + "\n")
        staged.replace(self.record)
