"""A release on the appliance, from the retained desire to a committed slot or a revert.

How it works (the states are :class:`protocols.release_bundle.ReleaseState`, each reported as a
``release.progress`` event with the rollout and a short detail)::

    desire ─► notified ─► waiting_for_window   (window "closed" and not forced: wait for the
       │                                         cloud's next desire, which opens it)
       └────► downloading ─► verifying ─► installing ─► (update lease) ─► confirming
                   │             │            │                              │
                   └─────────────┴────────────┴─► failed / timed_out         ├─► succeeded
                                                  (nothing switched)         └─► reverted

* downloading — :mod:`.download`: HTTP Range resume into ``<app_dir>/downloads``, the whole
  file's size and sha256 checked against the desire.
* verifying — :mod:`.install`: signature against the trusted keys, every wheel's digest, the
  desire's signature and version, the minimum agent version.
* installing — into the INACTIVE slot; the running register is not touched.
* the update lease — the register holds one while a sale is open; the switch waits for it,
  never past its expiry nor ``release_lease_max_s`` (then it goes ahead, logged and counted).
* confirming — ``slots.json`` says ``trying``, ``current`` points at the new slot, the register
  restarts from it, and the health window (:mod:`.health`) decides: healthy for the whole
  window → committed (mark good) → ``succeeded``; otherwise the previous slot is made active
  again, the old register started, ``reverted`` (a failure) with the reason.

Every state has a deadline (settings); past it the release is ``timed_out``. A desire that
failed is remembered (``last_failed``: the sha256 of its message) and not retried until the
cloud sends a different one — a retained message redelivered at reconnect is the same desire.
An agent restarted mid-update resumes from ``slots.json``: a ``trying`` slot on boot was never
marked good, so the agent goes back to the committed one before the register starts
(:func:`recover_at_boot`); a download resumes from its ``.part`` file when the desire comes again.

Heavy imports (httpx, cryptography, packaging) happen when the first desire arrives: the agent
at rest stays small (:mod:`edge.agent.process`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.agent.register_link import RegisterLink
from edge.agent.releases import metrics
from edge.agent.releases.health import Baseline, judge, lease_blocks, sales_regressed
from edge.agent.releases.slots import Attempt, SlotName, SlotState, SlotStore
from edge.agent.settings import FleetAgentSettings
from edge.agent.supervisor import EventSink, Supervisor
from protocols.codec import decode_payload
from protocols.errors import ProtocolError
from protocols.messages import DesiredRelease
from protocols.vocabulary import EventKind

if TYPE_CHECKING:
    import ssl

    import httpx

    from edge.agent.releases.install import Installer

log = logging.getLogger(__name__)

TICK_S = 0.2
#: The window value that means "not now" (the cloud computes windows; anything else is open).
CLOSED = "closed"

#: What to do about each refusal, for the one log line an operator reads.
ADVICE: Mapping[str, str] = {
    "unknown_key": "add the signing key's public key to trusted_release_keys, or sign with a"
    " trusted key",
    "bad_signature": "rebuild and re-publish the bundle: it was changed after signing",
    "bundle_sha256_mismatch": "re-publish the release: the file served is not the one named",
    "sha256_mismatch": "rebuild the bundle: a wheel differs from its manifest",
    "size_mismatch": "rebuild the bundle: a wheel differs from its manifest",
    "truncated": "check the control plane's bundle route and the store's uplink, then re-publish",
    "agent_too_old": "update the appliance image (its agent) before this release",
    "signature_mismatch": "re-publish: the release names another signature than its bundle's",
    "version_mismatch": "re-publish: the release names another version than its bundle's",
    "disk_write_failed": "free space on the data partition (or replace the disk), then re-publish",
    "install_failed": "see the agent's log for pip's output; fix the bundle's wheels",
    "download_refused": "check the device's access to the release on the control plane",
    "unhealthy": "see the register's log around the switch; the store runs the old release",
}


HttpContext = Callable[[], "tuple[httpx.Auth | None, ssl.SSLContext | bool]"]


@dataclass(frozen=True)
class Deadlines:
    """How long each state may last, in seconds (from the settings)."""

    download_s: float
    install_s: float  # verifying and installing together
    lease_s: float
    start_s: float  # the new register's hello and first ready
    window_s: float


def register_command(
    settings: FleetAgentSettings, slot_dir: Path | None, base_env: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """How the register starts from ``slot_dir`` (None: the image's package), and its env.

    A slot's register runs only the slot's code: ``PYTHONPATH`` (a development checkout) is
    not handed to it, or it would shadow the release being tried.
    """
    env = dict(base_env)
    if settings.register_argv:
        return list(settings.register_argv), env
    python = slot_dir / "bin" / "python" if slot_dir is not None else None
    if python is not None and python.exists():
        env.pop("PYTHONPATH", None)
        return [str(python), "-m", "edge.cli", "register"], env
    return [sys.executable, "-m", "edge.cli", "register"], env


def recover_at_boot(store: SlotStore) -> tuple[SlotState, Attempt | None]:
    """Before the register starts: a slot still ``trying`` was never marked good — go back.

    Returns the state, and the attempt that was reverted (to report once connected).
    """
    state = store.load()
    store.point_current(state.active)  # the link follows the file (a cut between the two)
    if state.trying is None:
        return state, None
    attempt = state.attempt
    log.warning(
        "release: slot %s was on trial when the agent stopped and was never marked good;"
        " going back to %s",
        state.trying,
        state.committed or "the image's package",
    )
    state = store.save(
        replace(
            state,
            active=state.committed,
            previous=state.trying,
            trying=None,
            attempt=None,
            last_failed=attempt.key if attempt else state.last_failed,
        )
    )
    metrics.OUTCOMES.labels("reverted").inc()
    return state, attempt


class ReleaseFailed(Exception):  # noqa: N818 - named for what the operator is told
    """A release that ends before the switch; ``reason`` names why (metrics, advice)."""

    def __init__(self, reason: str, detail: str, *, state: str = "failed") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.state = state


class ReleaseManager:
    """Carries out the retained release desire; run :meth:`run` for the life of the agent."""

    def __init__(
        self,
        *,
        settings: FleetAgentSettings,
        supervisor: Supervisor,
        link: RegisterLink,
        emit: EventSink,
        http: HttpContext,
        image_version: str,
        base_env: Mapping[str, str],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self.link = link
        self.emit = emit
        self.http = http
        self.image_version = image_version
        self.base_env = dict(base_env)
        self.on_change = on_change
        self.store = SlotStore(settings.apps)
        self.deadlines = Deadlines(
            download_s=settings.release_download_timeout_s,
            install_s=settings.release_install_timeout_s,
            lease_s=settings.release_lease_max_s,
            start_s=settings.start_timeout_s,
            window_s=settings.release_health_window_s,
        )
        self.state, reverted = recover_at_boot(self.store)
        self._boot_reverted = reverted
        self._pending: tuple[DesiredRelease, str] | None = None
        self._wake = asyncio.Event()
        self._busy_key: str | None = None
        self._done_key: str | None = None
        self.phase = ""  # the state of the release in progress, for the console
        self.last_failure = ""
        self.lease_overrides = 0
        #: How a verified release becomes a slot; None: :func:`.install.install_into_slot`.
        self.installer: Installer | None = None
        self.start_register_from(self.state.active, restart=False)

    # -- what the rest of the agent sees --------------------------------------------------------

    @property
    def running_version(self) -> str:
        """The release the register runs (or is trying)."""
        return self.state.version_of(self.state.active, image_version=self.image_version)

    @property
    def slot(self) -> str:
        """The active slot's name ("" for the image's package)."""
        return self.state.active or ""

    def health(self) -> dict[str, Any]:
        """The ``release`` entry of the state's health: version, slot, progress, lease."""
        beat = self.link.heartbeat
        lease = beat.lease if beat is not None else None
        return {
            "device": "release",
            "kind": "app",
            "connected": True,
            "error": self.last_failure or None,
            "detail": {
                "version": self.running_version,
                "slot": self.slot,
                "committed": self.state.committed or "",
                "trying": self.state.trying or "",
                "phase": self.phase,
                # the state's detail values are flat (text, integer, flag): the cloud refuses a
                # nested object there, so the lease travels as three entries
                "lease_owner": "" if lease is None else lease.owner,
                "lease_reason": "" if lease is None else lease.reason,
                "lease_expires_at": 0 if lease is None else lease.expires_at,
                "lease_overrides": self.lease_overrides,
            },
        }

    def receive(self, payload: bytes, topic: str) -> None:
        """The retained ``release`` message arrived (at every connect, and when it changes)."""
        try:
            desire = decode_payload(DesiredRelease, payload, topic=topic)
        except ProtocolError as err:
            metrics.REFUSALS.labels("malformed_desire").inc()
            log.warning("release: dropped a desired release the agent cannot read: %s", err.reason)
            return
        key = hashlib.sha256(payload).hexdigest()
        if key in (self._busy_key, self._done_key):
            return  # a redelivery of what is being (or was just) done
        if key == self.state.last_failed:
            log.info(
                "release %s failed here before; not retried until the cloud sends a new desire",
                desire.version,
            )
            return
        self._pending = (desire, key)
        self._wake.set()

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Carry out each new desire, one at a time; returns only when cancelled."""
        attempt = self._boot_reverted
        if attempt is not None:
            self._report(
                attempt.rollout,
                attempt.version,
                "reverted",
                "the agent restarted during the health window; back on the committed release",
            )
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._pending is None:
                continue
            desire, key = self._pending
            self._pending = None
            self._busy_key = key
            try:
                await self._carry_out(desire, key)
            except Exception as err:  # one release must never stop the agent
                log.exception("release %s: unexpected failure", desire.version)
                self._fail(desire, key, ReleaseFailed("install_failed", repr(err)))
            finally:
                self._busy_key = None
                self.phase = ""
                self.on_change()

    async def _carry_out(self, desire: DesiredRelease, key: str) -> None:
        self.state = self.store.load()
        if desire.version == self.running_version and self.state.trying is None:
            self._done_key = key
            self._report(desire.rollout, desire.version, "succeeded", "already running it")
            return
        self._enter(desire, key, "notified", 0)
        if desire.window == CLOSED and not desire.force:
            self._enter(desire, key, "waiting_for_window", 0)
            log.info("release %s waits for the maintenance window", desire.version)
            return  # the cloud sends the desire again when the window opens
        staging = self.settings.apps / "staging"
        try:
            wheels = await self._fetch_and_verify(desire, key, staging)
            slot = self.state.inactive
            self._enter(desire, key, "installing", self.deadlines.install_s, slot=slot)
            await self._install(slot, desire, wheels)
        except ReleaseFailed as err:
            self._fail(desire, key, err)
            return
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)
        await self._wait_for_lease(desire)
        await self._switch_and_confirm(desire, key, slot)

    # -- before the switch ------------------------------------------------------------------------

    async def _fetch_and_verify(
        self, desire: DesiredRelease, key: str, staging: Path
    ) -> list[Path]:
        from edge.agent.own_commands import AGENT_VERSION
        from edge.agent.releases.download import DiskWriteFailed, DownloadFailed, download_bundle
        from edge.agent.releases.install import unpack_verified
        from protocols import release_bundle as rb

        try:
            trusted = rb.TrustedKeys.from_texts(self.settings.trusted_release_keys)
        except ValueError as err:
            raise ReleaseFailed("unknown_key", f"trusted_release_keys: {err}") from err
        downloads = self.settings.apps / "downloads"
        self._enter(desire, key, "downloading", self.deadlines.download_s)
        auth, verify = self.http()
        try:
            async with asyncio.timeout(self.deadlines.download_s):
                bundle = await download_bundle(
                    url=desire.url,
                    dest=downloads / f"{desire.sha256}{rb.SUFFIX}",
                    sha256=desire.sha256,
                    auth=auth,
                    verify=verify,
                )
        except TimeoutError as err:
            raise ReleaseFailed(
                "truncated",
                f"not downloaded within {self.deadlines.download_s:g} s",
                state="timed_out",
            ) from err
        except rb.BundleRefused as err:
            raise ReleaseFailed(err.reason, err.detail) from err
        except DiskWriteFailed as err:
            raise ReleaseFailed("disk_write_failed", str(err)) from err
        except DownloadFailed as err:
            raise ReleaseFailed("download_refused", str(err)) from err
        self._enter(desire, key, "verifying", self.deadlines.install_s)
        try:
            async with asyncio.timeout(self.deadlines.install_s):
                verified = await asyncio.to_thread(unpack_verified, bundle, staging, trusted)
            if verified.signature.signature != desire.signature:
                raise rb.BundleRefused(
                    "signature_mismatch", "the bundle's signature is not the desire's"
                )
            if verified.manifest.version != desire.version:
                raise rb.BundleRefused(
                    "version_mismatch",
                    f"the bundle holds {verified.manifest.version}, the desire names"
                    f" {desire.version}",
                )
            rb.check_agent_version(verified.manifest, AGENT_VERSION)
        except rb.BundleRefused as err:
            bundle.unlink(missing_ok=True)  # a refused bundle is not kept (nor resumed)
            raise ReleaseFailed(err.reason, err.detail) from err
        except TimeoutError as err:
            raise ReleaseFailed(
                "install_failed", "verifying took too long", state="timed_out"
            ) from err
        except OSError as err:
            raise ReleaseFailed("disk_write_failed", str(err)) from err
        return [staging / f.path for f in verified.manifest.files]

    async def _install(self, slot: SlotName, desire: DesiredRelease, wheels: list[Path]) -> None:
        from edge.agent.releases.install import InstallFailed, install_into_slot

        install = self.installer or install_into_slot
        versions = {k: v for k, v in self.state.versions.items() if k != slot}
        self.state = self.store.save(replace(self.state, versions=versions))
        try:
            async with asyncio.timeout(self.deadlines.install_s):
                await install(self.store.slot_dir(slot), wheels)
        except InstallFailed as err:
            raise ReleaseFailed(err.reason, err.detail) from err
        except TimeoutError as err:
            raise ReleaseFailed(
                "install_failed", "installing took too long", state="timed_out"
            ) from err
        except OSError as err:
            raise ReleaseFailed("disk_write_failed", str(err)) from err
        self.state = self.store.save(
            replace(self.state, versions={**versions, slot: desire.version})
        )

    async def _wait_for_lease(self, desire: DesiredRelease) -> None:
        """Until the register's lease is released or expires; never past ``lease_s``."""
        started = time.monotonic()
        logged = False
        while True:
            beat = self.link.heartbeat
            lease = beat.lease if beat is not None and self.link.connected else None
            verdict = lease_blocks(
                lease,
                now_ms=time.time_ns() // 1_000_000,
                waited_s=time.monotonic() - started,
                max_s=self.deadlines.lease_s,
            )
            if verdict == "free":
                return
            if verdict != "held":
                if lease is None:
                    raise RuntimeError("a lease verdict without a lease")
                self.lease_overrides += 1
                metrics.LEASE_OVERRIDDEN.labels(verdict).inc()
                log.warning(
                    "release %s: switching past %s's update lease (%s, %s): a lease never"
                    " blocks an update forever; if sales stay open this long, check the till",
                    desire.version,
                    lease.owner,
                    lease.reason,
                    "expired"
                    if verdict == "expired"
                    else f"held over {self.deadlines.lease_s:g} s",
                )
                return
            if not logged:
                if lease is None:
                    raise RuntimeError("a lease verdict of held without a lease")
                log.info(
                    "release %s waits for %s's update lease (%s)",
                    desire.version,
                    lease.owner,
                    lease.reason,
                )
                logged = True
                self.on_change()
            await asyncio.sleep(TICK_S)

    # -- the switch and the health window ---------------------------------------------------------

    def start_register_from(self, slot: SlotName | None, *, restart: bool = True) -> None:
        """Point the supervisor at ``slot``'s register; restart it now when ``restart``."""
        slot_dir = self.store.slot_dir(slot) if slot is not None else None
        argv, env = register_command(self.settings, slot_dir, self.base_env)
        self.supervisor.argv, self.supervisor.env = argv, env
        if restart:
            self.supervisor.restart()

    async def _switch_and_confirm(self, desire: DesiredRelease, key: str, slot: SlotName) -> None:
        baseline = Baseline.of(self.link.heartbeat if self.link.ready else None)
        previous = self.state.active
        self._enter(
            desire,
            key,
            "confirming",
            self.deadlines.start_s + self.deadlines.window_s,
            slot=slot,
            active=slot,
            trying=slot,
            previous=previous,
        )
        starts = self.supervisor.status.starts
        log.info("release %s: switched to slot %s; health window begins", desire.version, slot)
        self.start_register_from(slot)
        why = await self._health_window(baseline, starts)
        if why is None:
            self.state = self.store.save(
                replace(self.state, committed=slot, trying=None, attempt=None, last_failed=None)
            )
            self._done_key = key
            self.last_failure = ""
            metrics.OUTCOMES.labels("succeeded").inc()
            log.info("release %s committed in slot %s (marked good)", desire.version, slot)
            self._report(desire.rollout, desire.version, "succeeded", f"committed in slot {slot}")
            return
        self.state = self.store.save(
            replace(
                self.state,
                active=previous,
                trying=None,
                previous=slot,
                attempt=None,
                last_failed=key,
            )
        )
        self.start_register_from(previous)
        metrics.OUTCOMES.labels("reverted").inc()
        metrics.REFUSALS.labels("unhealthy").inc()
        self.last_failure = f"{desire.version} reverted: {why}"
        log.error(
            "release %s reverted to %s: %s; %s",
            desire.version,
            previous or "the image's package",
            why,
            ADVICE["unhealthy"],
        )
        self._report(desire.rollout, desire.version, "reverted", why)

    async def _health_window(self, baseline: Baseline, starts_before: int) -> str | None:
        """None when the new register was healthy for the whole window, else why not."""
        status = self.supervisor.status
        started = time.monotonic()
        while status.starts <= starts_before:  # the supervisor has not started the new one yet
            if time.monotonic() - started > self.deadlines.start_s:
                return "the new register was not started"
            await asyncio.sleep(TICK_S / 4)
        starts = status.starts
        while not self.link.ready:
            if status.starts != starts or status.failures:
                return f"the new register ended before it was ready ({status.last_exit})"
            if time.monotonic() - started > self.deadlines.start_s:
                return f"the new register was not ready within {self.deadlines.start_s:g} s"
            await asyncio.sleep(TICK_S)
        first = self.link.heartbeat
        ends = time.monotonic() + self.deadlines.window_s
        while time.monotonic() < ends:
            if status.starts != starts or status.failures:
                return f"the new register ended in the health window ({status.last_exit})"
            if not self.link.ready:
                return "the new register stopped being ready in the health window"
            await asyncio.sleep(TICK_S)
        last = self.link.heartbeat
        max_lag_ms = int(self.settings.release_max_lag_s * 1000)
        return judge(last, baseline=baseline, max_lag_ms=max_lag_ms) or sales_regressed(first, last)

    # -- reporting ---------------------------------------------------------------------------------

    def _enter(
        self,
        desire: DesiredRelease,
        key: str,
        state: str,
        within_s: float,
        *,
        slot: SlotName | None = None,
        **changes: Any,
    ) -> None:
        now = time.time()
        attempt = Attempt(
            key=key,
            version=desire.version,
            rollout=desire.rollout,
            state=state,
            since=now,
            deadline=now + within_s,
            slot=slot,
        )
        self.state = self.store.save(replace(self.state, attempt=attempt, **changes))
        self.phase = state
        self._report(desire.rollout, desire.version, state, "")
        self.on_change()

    def _fail(self, desire: DesiredRelease, key: str, err: ReleaseFailed) -> None:
        advice = ADVICE.get(err.reason, "see the agent's log")
        metrics.REFUSALS.labels(err.reason).inc()
        metrics.OUTCOMES.labels(err.state).inc()
        self.last_failure = f"{desire.version} {err.state}: {err.reason}"
        log.error(
            "release %s refused (%s): %s; %s; the running release is untouched",
            desire.version,
            err.reason,
            err.detail,
            advice,
        )
        self.state = self.store.save(replace(self.state, attempt=None, last_failed=key))
        self._report(desire.rollout, desire.version, err.state, f"{err.reason}: {err.detail}")

    def _report(self, rollout: str | None, version: str, state: str, detail: str) -> None:
        from protocols.release_bundle import ReleaseState, progress_body

        body = progress_body(
            rollout=rollout, version=version, state=ReleaseState(state), detail=detail
        )
        self.emit(EventKind.RELEASE_PROGRESS, body)
