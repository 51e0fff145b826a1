"""The control plane's background tasks: every one supervised, so a dead loop comes back.

The mechanism is the fleet's one (:class:`mqttlink.tasks.ServiceTasks`, shared with the
appliance); what is the cloud's own is the policy: a loop of the control plane (the ingest worker,
the rollout driver, the configuration link …) is never allowed to take the API down with it, so
each runs with :meth:`~mqttlink.tasks.ServiceTasks.supervise` — counted, logged, restarted after
a backoff — and readiness reads its :class:`~mqttlink.tasks.Supervised` state.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from mqttlink.tasks import RestartBackoff, ServiceTasks, Supervised, restart_backoff

__all__ = ["Supervised", "background_tasks"]


@contextlib.asynccontextmanager
async def background_tasks(
    backoff: RestartBackoff = restart_backoff,
) -> AsyncIterator[ServiceTasks]:
    """Supervised tasks for the body of the ``async with``; all cancelled and awaited at its end.

    ``backoff`` makes each task its own :class:`~mqttlink.backoff.Backoff`.
    """
    async with ServiceTasks("control plane", restart=backoff) as tasks:
        yield tasks
