"""The two commands the agent sends the register over the local socket about configuration.

They travel as the contract's ``command`` / ``result`` (``docs/agent-register-contract.md``) and
are the agent's only: a remote ``cmd`` with one of these names is refused, never passed through.

* ``config.hold`` {version} — "I want to restart you for a new configuration": ``ok`` when no sale
  is open, and the register then refuses to start one (busy) for :data:`HOLD_S` seconds, so no
  sale can open between this answer and the restart; ``ok: false`` with the reason while one is.
* ``config.reload`` {version} — "the applied document changed only in live sections": the
  register re-reads ``config/applied.json`` and takes them without a restart; ``ok: false`` when
  it cannot (a restart section differs from what it was composed with), and the agent then
  restarts it at the next safe point.
"""

from __future__ import annotations

from typing import Final

HOLD = "config.hold"
RELOAD = "config.reload"
LOCAL_ONLY: Final = frozenset({HOLD, RELOAD})
#: How long a register holds off new sales for a restart that does not come (an agent that died).
HOLD_S: Final = 30.0
