"""One line an operator reads for a command's outcome, shared by the API and the console."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def _count_started(result: Mapping[str, Any]) -> str:
    return f"counting {result['session_id']} ({result['expected_gtins']} GTINs expected)"


def _count_stopped(result: Mapping[str, Any]) -> str:
    report = result["report"]
    net = report["counted_total"] - report["expected_total"]
    return (
        f"count {report['session_id']}: counted {report['counted_total']}, "
        f"expected {report['expected_total']}, variance {net:+d} (journal seq {result['seq']})"
    )


_DONE: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "stock_count.start": _count_started,
    "stock_count.stop": _count_stopped,
    "printer.test_page": lambda r: f"test page sent to the printer (job {r['job_id']})",
    "drawer.open": lambda r: f"drawer opened (journal seq {r['seq']})",
}


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
    try:
        return _DONE[name](result or {})
    except (KeyError, TypeError):
        return f"done: {result}"
