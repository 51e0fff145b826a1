"""The start-up heap out of the garbage collector's way: one ``gc.freeze`` per process.

Why: a full (generation 2) collection walks every object the process holds. After start-up the
control plane holds about 190,000 (FastAPI, SQLAlchemy, pydantic schemas), and walking them took
60 ms on a quiet machine, over 500 ms on a loaded one, during which no batch is stored and no ack
is sent: every sale in flight then lands in the replication lag's tail. The appliance's register
is the same in smaller. Objects made at start-up live as long as the process, so looking at them
again and again finds nothing.

How it works: the long-lived services (the cloud's ingest worker, the appliance's replicator)
call :func:`freeze_startup_heap` when they start. It collects once (so start-up garbage is not
kept for ever) and moves every surviving object to the permanent generation, which collections
skip; what the service allocates afterwards is collected as before. Only the first call in a
process does anything: a second service, or a reconnect, must not pay a full collection again.

It also lets the youngest generation grow to :data:`YOUNG_THRESHOLD` objects before it is
collected (Python's default is 700). Decoding one 500-sale batch makes ~30,000 objects that
live until the batch is stored, so at 700 each batch ran dozens of young collections that
promoted it, whole, into the older generations, to be walked again there. Nearly all of them
are freed by their reference counts, never by the collector: fewer, larger young collections
do the same work once (measured in-process on PostgreSQL: the cloud's CPU per 1,000 sales
81 ms as before, 57-68 ms frozen, 51-57 ms frozen with this threshold).
"""

from __future__ import annotations

import gc

#: Objects allocated (less freed) before a young collection: ~1 ms of walking at most.
YOUNG_THRESHOLD = 20_000

_frozen = False


def freeze_startup_heap() -> bool:
    """Freeze what the process holds now; True if this call did it (the first in the process)."""
    global _frozen
    if _frozen:
        return False
    _frozen = True
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)
    return True
