"""The fleet agent: the appliance's own process — identity, fleet session, register supervision.

* ``process`` — :class:`FleetAgentProcess`, everything below wired; ``storefleet agent`` runs it.
* ``settings`` — the agent's one settings object (file, then ``STOREFLEET_AGENT_*``).
* ``supervisor`` — starts the register, watches it, restarts it with backoff, calls a crash loop.
* ``register_link`` / ``contract`` — the local socket to the register and its JSON-lines contract.
* ``session`` / ``mqtt_link`` — the MQTT session (reconnect, backoff) for state, events and cmd.
* ``state`` / ``events`` — the retained ``sf.state`` and the ``sf.event`` outbox.
* ``commands`` / ``own_commands`` — the command runner, the agent's own commands.
* ``log_upload`` — the register's last logs to the control plane over HTTPS.
* ``notify`` — sd_notify to systemd (ready, watchdog, stopping).

It imports nothing of the register (``docs/agent-register-contract.md``).
"""
