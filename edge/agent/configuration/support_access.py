"""Support's SSH, as the store configuration's ``support`` section says: the agent's half.

Why a file and not ``systemctl``: the agent runs unprivileged and may start no service. It writes
the keys support may log in with to ``<data_dir>/support/authorized_keys`` (empty: SSH off) and
the image's root helper (``storefleet-support-access.path`` → ``libexec/support-access``) reads
them, checks each line again with ``ssh-keygen``, hands sshd its own root-owned copy and starts or
stops it. The file lives on the data partition, so the helper applies the last state again at
boot, before the agent has heard from the fleet.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import Gauge

from provisioning.keys import write_atomic

if TYPE_CHECKING:
    from protocols.store_config import SupportAccess

log = logging.getLogger(__name__)

SSH_ON = Gauge(
    "storefleet_agent_support_ssh",
    "1 while the configuration turns support's SSH on (the root helper starts sshd)",
    ["device_id"],
)
KEYS_FILE = "authorized_keys"


def keys_path(data_dir: Path) -> Path:
    """Where the agent leaves support's keys for the root helper."""
    return data_dir / "support" / KEYS_FILE


def apply_support_access(data_dir: Path, support: SupportAccess, *, device_id: str = "") -> bool:
    """Write support's keys (none while SSH is off); True when the file changed."""
    keys = list(support.ssh_keys) if support.ssh else []
    body = "".join(f"{key}\n" for key in keys).encode("ascii")
    path = keys_path(data_dir)
    SSH_ON.labels(device_id).set(1 if keys else 0)
    try:
        if path.read_bytes() == body:
            return False
    except FileNotFoundError:
        if not keys:
            return False  # off, and never turned on: nothing for the helper to do
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, body, mode=0o644)  # public keys; the helper copies them for sshd
    if keys:
        log.warning(
            "support SSH turned on by the store configuration with %d key(s): sshd starts"
            " within seconds (user support, keys only); turn it off in the configuration when"
            " support is done",
            len(keys),
        )
    else:
        log.info("support SSH turned off by the store configuration: sshd stops")
    return True
