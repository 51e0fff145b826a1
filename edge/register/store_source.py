"""Where the register's store rules come from: the applied configuration, else a store file.

How it works, in order:

1. ``<data_dir>/config/applied.json`` — the configuration the fleet agent applied from the control
   plane (:mod:`edge.agent.configuration`). When it is there it wins: it is what the operator set.
2. ``store_file`` — a store document given in the settings (the demo's ``demo.toml`` points at
   ``edge/pos/demo_store.json``; a bench or an installer may write one), else
   ``<data_dir>/store.json``.
3. Neither: a register the fleet agent runs (``agent_socket`` set) or one not enrolled yet composes
   without a store and shows that it waits (first boot: enrolment; enrolled: "waiting for its
   store settings"); the agent restarts it when the first configuration is applied. A register
   started alone is refused with a message naming the setting: nobody would ever configure it.

No demo value is reachable from a production start: the demo store is read only when the
settings name its file.
"""

from __future__ import annotations

import logging

from edge.agent.configuration.files import AppliedUnreadable, applied_path, read_applied
from edge.pos.applied_store import store_config_from_document
from edge.pos.store_config import StoreConfig, load_store_config
from edge.register.settings import ENV_PREFIX, RegisterSettings, SettingsRefused

log = logging.getLogger(__name__)


def read_store(settings: RegisterSettings, *, required: bool) -> StoreConfig | None:
    """The store's rules, None while waiting for them; :class:`SettingsRefused` when unusable."""
    try:
        applied = read_applied(settings.data_dir)
    except AppliedUnreadable as err:  # the agent writes atomically: a disk fault or a hand edit
        log.error("%s; the register waits for the fleet agent to apply it again", err)
        applied = None
    if applied is not None:
        log.info("store configuration %d (%s)", applied.version, applied.config.store.name)
        return store_config_from_document(applied.config, version=applied.version)
    path = settings.store_path
    if not path.exists() and (not required or settings.agent_socket is not None):
        if required:
            log.warning(
                "no store configuration yet (%s): waiting for the control plane's",
                applied_path(settings.data_dir),
            )
        return None
    try:
        return load_store_config(path)
    except FileNotFoundError as err:
        msg = (
            f"store_file ({ENV_PREFIX}STORE_FILE): {path} does not exist and no configuration"
            f" has been applied ({applied_path(settings.data_dir)}); start the register through"
            " the fleet agent, which applies the control plane's, or set it to a store document"
        )
        raise SettingsRefused(msg) from err
    except (OSError, ValueError, KeyError, TypeError) as err:
        what = f"missing key {err}" if isinstance(err, KeyError) else str(err)
        msg = f"store_file ({ENV_PREFIX}STORE_FILE): {path} is not a store document ({what})"
        raise SettingsRefused(msg) from err
