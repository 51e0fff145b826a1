"""One line an operator reads for a command's outcome, shared by the API and the console.

Results are read through their command's model (:mod:`control_plane.commands.results`); one that
does not fit (a row stored before results were checked) is shown raw rather than failing a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from control_plane.commands.results import (
    CountStarted,
    CountStopped,
    DrawerOpened,
    OsInstallRequested,
    TestPageSent,
    parsed,
)


def _done(result: object) -> str | None:
    """The sentence for a result of a known shape; None for any other."""
    match result:
        case CountStarted():
            return f"counting {result.session_id} ({result.expected_gtins} GTINs expected)"
        case CountStopped(seq=seq, report=report):
            net = report.counted_total - report.expected_total
            return (
                f"count {report.session_id}: counted {report.counted_total}, "
                f"expected {report.expected_total}, variance {net:+d} (journal seq {seq})"
            )
        case TestPageSent():
            return f"test page sent to the printer (job {result.job_id})"
        case DrawerOpened():
            return f"drawer opened (journal seq {result.seq})"
        case OsInstallRequested():
            then = "then reboots into it" if result.reboot else "tried at the next reboot"
            return f"OS image {result.image} checked and handed to the installer ({then})"
        case _:
            return None


def summarize(
    *,
    name: str,
    status: str,
    ok: bool | None,
    result: Mapping[str, Any] | None,
    error: str | None,
) -> str:
    """What happened, in the operator's words; falls back to the raw result if its shape is new."""
    if status == "pending":
        return "waiting for the device"
    if status == "timed_out":
        return "no answer from the device in time; is it online? Try again"
    if not ok:
        return f"refused: {error or 'no reason given'}"
    return _done(parsed(name, result or {})) or f"done: {result}"
