"""The store configuration on the appliance: received, validated, applied atomically, reported.

* ``files`` — the applied document on disk (``<data_dir>/config/``), written atomically; the
  register reads the same files.
* ``applier`` — :class:`ConfigApplier`: takes each retained ``config`` message, refuses what the
  schema refuses (the last good one stays), never goes back in version, applies live sections at
  once and restart sections at a moment with no open sale.
* ``register_control`` — what the applier asks of the register over the local socket (hold for a
  restart, reload the live sections) and of the supervisor (restart).
* ``metrics`` — the counters.

The schema is :mod:`protocols.store_config`; how the register takes a new document is in
``docs/agent-register-contract.md`` ("Configuration").
"""
