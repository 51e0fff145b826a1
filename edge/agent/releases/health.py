"""Whether a register on trial is healthy, and whether its update lease still holds (pure).

The health window (:class:`HealthVerdict` from :func:`judge`) asks what an operator would:
the register said hello and is ready to sell; it keeps selling (the committed-sale counter
never goes back, and a sale that failed to commit is a failure); the printer and the scanner
that worked before the switch work now; replication is not refused by the cloud and lags less
than the limit. A peripheral the store does not have is not asked for.

The lease (:func:`lease_blocks`): the register holds one while a cart or payment is open. It
blocks a switch until it is released or expires, and never longer than the agent's own limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge.agent.contract import Heartbeat, UpdateLease

#: The kinds of peripheral a release must not break (when the store has them and they worked
#: before). The heartbeat names each device as the store does ("receipt-printer", "hand-scanner")
#: and says its kind: the watch is by kind, so a store's own names are watched too.
WATCHED = ("printer", "scanner")


@dataclass(frozen=True)
class Baseline:
    """What worked before the switch."""

    peripherals_up: frozenset[str]

    @classmethod
    def of(cls, beat: Heartbeat | None) -> Baseline:
        """The watched peripherals (by name) connected and without error in ``beat``."""
        if beat is None:
            return cls(frozenset())
        return cls(
            frozenset(
                name
                for name, health in beat.peripherals.items()
                if _kind(name, health) in WATCHED and _up(health)
            )
        )


def _kind(name: str, health: Mapping[str, Any] | None) -> str:
    """A device's kind as its health says (a report without one: its name)."""
    return str((health or {}).get("kind") or name)


def _up(health: Mapping[str, Any] | None) -> bool:
    if not health:
        return False
    return bool(health.get("connected")) and not health.get("error")


def judge(beat: Heartbeat | None, *, baseline: Baseline, max_lag_ms: int) -> str | None:
    """None when ``beat`` shows a healthy register; otherwise why not, in words."""
    if beat is None:
        return "the register has not reported"
    if not beat.ready:
        return "the register is not ready to sell"
    broken = sorted(n for n in baseline.peripherals_up if not _up(beat.peripherals.get(n)))
    if broken:
        return f"{', '.join(broken)} worked before the switch and do not now"
    replication = beat.replication
    if replication.refusal:
        return f"the cloud refuses the journal: {replication.refusal}"
    if replication.lag_ms is not None and replication.lag_ms > max_lag_ms:
        return f"replication lags {replication.lag_ms} ms (limit {max_lag_ms})"
    return None


def sales_regressed(first: Heartbeat | None, last: Heartbeat | None) -> str | None:
    """Why the sales counters show the register stopped selling, or None."""
    if first is None or last is None:
        return None
    if last.sales.committed < first.sales.committed:
        return "the committed-sale counter went back (the register restarted in the window)"
    return None


def lease_blocks(lease: UpdateLease | None, *, now_ms: int, waited_s: float, max_s: float) -> str:
    """``"held"`` while the lease blocks; ``"free"``, ``"expired"`` or ``"too_long"`` when not."""
    if lease is None:
        return "free"
    if lease.expires_at <= now_ms:
        return "expired"
    if waited_s >= max_s:
        return "too_long"
    return "held"
