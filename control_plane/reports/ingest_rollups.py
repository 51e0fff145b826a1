"""The ingest's one call into the reports: "this device stored records", which wakes this
process's fold worker (:mod:`~control_plane.reports.fold_worker`). Nothing is folded here.

Why not fold in the ingest's transaction (as issue 13 first had it): the fold and its upsert
were on the ack path, so replication paid for every report's sums — the lag's p99 28 ms against
16 ms without, the ingest 0.6x as fast. The rollups are exact without it: every read catches its
stores up first (:func:`~control_plane.reports.rollups.catch_up_stores`), and the worker keeps
that catch-up small by folding, in large pages and its own transactions, what the ingest stored.

The call is made after the ingest's transaction commits, so the worker it wakes finds the
records; it costs a set lookup when no worker listens (another instance's worker finds the
records by polling).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

#: What runs when a device has stored records: each listening fold worker's wake-up.
Listener = Callable[[str], None]
_listeners: set[Listener] = set()


def records_stored(device_id: str) -> None:
    """The ingest committed new records of ``device_id``: wake the fold workers listening."""
    for listener in tuple(_listeners):
        listener(device_id)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call ``listener`` for every :func:`records_stored` while the ``with`` body runs."""
    _listeners.add(listener)
    try:
        yield
    finally:
        _listeners.discard(listener)
