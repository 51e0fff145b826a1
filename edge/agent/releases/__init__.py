"""Releases on the appliance: the retained desire to a committed app slot, or a revert.

* ``manager`` — :class:`ReleaseManager`, the state machine (notified … succeeded | reverted).
* ``download`` — the bundle over HTTP with Range resume, the whole file's sha256.
* ``install`` — verify and unpack (``protocols.release_bundle``), a slot's venv, pip.
* ``slots`` — ``slots.json`` (active, committed, trying, previous) and the ``current`` link.
* ``health`` — the health window's verdict and the register's update lease.
"""
