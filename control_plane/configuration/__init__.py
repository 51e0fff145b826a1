"""Layered store configuration in the cloud: layers, the effective desired document per device
with per-key provenance, publishing it retained on ``config``, drift against what devices report,
and the store's staff delivered with it (issue 12).

Modules: ``layers`` (the pure resolution), ``tables``, ``document`` (the typed schema and size
budget), ``service`` (set and delete keys, recompute, refuse), ``publisher`` (the retained
publishing and reported-state link), ``drift``, ``staff``, ``preview``, ``history`` and
``rollback``, ``staged`` and ``staged_driver`` (a change through waves and gates, kept and driven
under a lease), the routers and ``pages``.
"""
