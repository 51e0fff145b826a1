"""The first-boot screen's coordinator: one enrolment at a time, its progress, its refusal.

How it works: the kiosk hands every scan (keyboard wedge over the WebSocket, or the register's
own scanner) and every typed code to :meth:`EnrolmentDesk.submit`. The desk keeps at most one
attempt pending and runs it in :meth:`EnrolmentDesk.run`, a loop the register starts in its
TaskGroup, so an attempt outlives the page that started it (a browser reload does not cut an
enrolment in half). Each step of :mod:`edge.enrolment.first_boot` is shown as it starts; a
refusal is kept on screen with the control plane's ``reason`` and ``advice`` until the next scan.
A refused attempt leaves the appliance as it was (no certificate; at most its key, which a retry
reuses), so scanning again is always safe. After success ``on_enrolled`` starts replication and
the loop ends: an appliance enrols once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from edge.enrolment.errors import ControlPlaneUnreachable, EnrolmentRejected
from edge.enrolment.first_boot import (
    EnrolmentResult,
    EnrolmentStep,
    enrol_from_qr,
    enrol_with_code,
)
from edge.enrolment.settings import EnrolmentSettings
from provisioning.enrolment import QR_SCHEME
from provisioning.errors import (
    CaFingerprintMismatch,
    DeviceIdentityError,
    EnrolmentPayloadError,
    EnrolmentRefused,
)

log = logging.getLogger(__name__)

MAX_SCAN = 2048  # an enrolment QR is ~200 characters; anything longer is not one


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the last attempt stopped, in words for the field tech."""

    reason: str  # stable code: token_used, wrong_ca, unreachable, … (tests and support match it)
    message: str
    advice: str = ""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One scanned QR text or typed code waiting to be tried."""

    text: str
    typed: bool


class DeskBusy(Exception):  # noqa: N818 - named for the refusal the screen shows
    """A scan arrived while an attempt was running, or after enrolment finished."""


def refusal_of(err: Exception) -> Refusal:
    """The screen's words for what stopped an attempt."""
    if isinstance(err, EnrolmentRejected):
        return Refusal(err.reason, str(err), "" if err.advice in str(err) else err.advice)
    if isinstance(err, ControlPlaneUnreachable):
        return Refusal("unreachable", str(err), "Try again when the network is back.")
    if isinstance(err, CaFingerprintMismatch):
        return Refusal("wrong_ca", str(err), "Nothing was sent. Ask for the right code.")
    if isinstance(err, EnrolmentRefused):  # raised here: a mistyped code never leaves the till
        return Refusal(err.reason, str(err))
    if isinstance(err, EnrolmentPayloadError):
        return Refusal("not_an_enrolment_code", str(err))
    if isinstance(err, DeviceIdentityError):
        return Refusal("identity", str(err))
    return Refusal("unexpected", f"enrolment stopped unexpectedly ({type(err).__name__}: {err})")


class EnrolmentDesk:
    """Owns first-boot enrolment for the kiosk; see the module docstring."""

    def __init__(
        self,
        *,
        identity_dir: Path,
        on_enrolled: Callable[[EnrolmentResult], Awaitable[None]],
        code_settings: EnrolmentSettings | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.identity_dir = identity_dir
        self.on_enrolled = on_enrolled
        self.code_settings = code_settings  # None: typed codes are off (the image lacks a pin)
        self.http = http
        self.on_change: Callable[[], None] = lambda: None  # the kiosk's hub, set by the app
        self.phase = "waiting"  # submitted, an EnrolmentStep's value, enrolled or refused
        self.steps_done: list[str] = []
        self.refusal: Refusal | None = None
        self.failed_step: str | None = None  # the step a refusal stopped, None: before any
        self.result: EnrolmentResult | None = None
        self._pending: Attempt | None = None
        self._wake = asyncio.Event()

    @property
    def busy(self) -> bool:
        """An attempt is queued or running."""
        return self._pending is not None

    def submit(self, text: str, *, typed: bool = False) -> None:
        """Queue a scan (QR text, or a code a keyboard typed) or a code from the touch keypad."""
        if self.result is not None:
            raise DeskBusy("this register is already enrolled")
        if self._pending is not None:
            raise DeskBusy("an enrolment is already running; wait for its answer")
        text = text.strip()[:MAX_SCAN]
        # a code typed on a USB keyboard arrives like a scan; only a QR carries the scheme
        as_code = typed or not text.lower().startswith(QR_SCHEME + ":")
        self._pending = Attempt(text=text, typed=as_code)
        self._show("submitted", steps=[])
        self._wake.set()

    async def run(self) -> EnrolmentResult:
        """Try each submitted attempt until one enrols; return what the control plane said."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            attempt = self._pending
            if attempt is None:
                continue
            try:
                result = await self._try(attempt)
            except Exception as err:  # every failure is shown; the desk stays up for a rescan
                refusal = refusal_of(err)
                if refusal.reason == "unexpected":
                    log.error("enrolment attempt failed", exc_info=err)
                else:
                    log.info("enrolment attempt refused (%s): %s", refusal.reason, err)
                steps = {step.value for step in EnrolmentStep}
                self.failed_step = self.phase if self.phase in steps else None
                self._pending = None  # free before the screens hear of it: they may rescan
                self._show("refused", refusal=refusal)
                continue
            self.result = result
            log.info("enrolled as %s (broker %s)", result.device_id, result.broker_url)
            await self.on_enrolled(result)
            self._show("enrolled", steps=[s.value for s in EnrolmentStep])
            self._pending = None
            return result

    async def _try(self, attempt: Attempt) -> EnrolmentResult:
        if not attempt.typed:
            return await enrol_from_qr(
                attempt.text, identity_dir=self.identity_dir, http=self.http, progress=self._step
            )
        if self.code_settings is None:
            raise _CodesOffError
        return await enrol_with_code(
            attempt.text,
            settings=self.code_settings,
            identity_dir=self.identity_dir,
            http=self.http,
            progress=self._step,
        )

    def _step(self, step: EnrolmentStep) -> None:
        order = list(EnrolmentStep)
        self._show(step.value, steps=[s.value for s in order[: order.index(step)]])

    def _show(
        self, phase: str, *, refusal: Refusal | None = None, steps: list[str] | None = None
    ) -> None:
        self.phase = phase
        self.refusal = refusal
        if steps is not None:
            self.steps_done = steps
        self.on_change()

    def state(self) -> dict[str, Any]:
        """The first-boot part of the kiosk's state document."""
        enrolled = None
        if self.result is not None:
            enrolled = {
                "device_id": self.result.device_id,
                "store": self.result.config.get("store_name") or self.result.config.get("store_id"),
                "store_id": self.result.config.get("store_id"),
                "register_name": self.result.config.get("register_name"),
            }
        return {
            "phase": self.phase,
            "steps_done": list(self.steps_done),
            "refusal": None if self.refusal is None else asdict(self.refusal),
            "failed_step": self.failed_step if self.phase == "refused" else None,
            "enrolled": enrolled,
            "codes": self.code_settings is not None,
        }


class _CodesOffError(EnrolmentRefused):
    reason = "codes_not_configured"
    advice = "this register's image has no control-plane address for typed codes; scan the QR"
