"""Uploading the register's last logs to the control plane over HTTPS, when an operator asks.

How it works: :func:`log_tail` reads the last ``max_bytes`` of ``register.log`` (reaching into
``register.log.1`` when the current file is shorter, so a log rotated at the last start still
shows why the one before died), cut at a line start. :func:`upload_logs` POSTs it as JSON to
``/api/devices/{device_id}/logs`` and returns the control plane's id for it. Bulk data goes over
HTTPS, never MQTT (ARCHITECTURE.md); the command result carries only the id. An enrolled
appliance trusts only its pinned root and signs the request with its own key
(:class:`~edge.enrolment.device_auth.DeviceAuth`).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.agent import metrics
from edge.agent.commands import CommandRefused

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LogTail:
    """The end of the register's log: the text and whether older lines were left out."""

    text: str
    truncated: bool


def log_tail(path: Path, *, max_bytes: int) -> LogTail:
    """The last ``max_bytes`` of ``path`` (and of its rotated predecessor), whole lines only."""
    chunks: list[bytes] = []
    left = max_bytes
    truncated = False
    for part in (path, path.with_name(path.name + ".1")):
        try:
            with part.open("rb") as handle:
                size = handle.seek(0, 2)
                start = max(0, size - left)
                handle.seek(start)
                data = handle.read(left)
        except FileNotFoundError:
            continue
        if start > 0:
            truncated = True
            cut = data.find(b"\n")
            data = data[cut + 1 :] if cut >= 0 else data
        chunks.insert(0, data)
        left -= len(data)
        if left <= 0 or start > 0:
            break
    return LogTail(text=b"".join(chunks).decode("utf-8", errors="replace"), truncated=truncated)


async def upload_logs(
    *,
    control_plane_url: str,
    device_id: str,
    tail: LogTail,
    verify: ssl.SSLContext | bool = True,
    auth: httpx.Auth | None = None,
    source: str = "register",
) -> dict[str, Any]:
    """POST the tail; returns ``{"log_id", "bytes", "truncated"}`` or :class:`CommandRefused`."""
    import httpx  # when first used: the agent does not carry it between uploads (see process)

    url = f"{control_plane_url.rstrip('/')}/api/devices/{device_id}/logs"
    body = {"source": source, "text": tail.text, "truncated": tail.truncated}
    try:
        async with httpx.AsyncClient(verify=verify, timeout=30.0, auth=auth) as client:
            response = await client.post(url, json=body)
    except httpx.HTTPError as err:
        metrics.LOG_UPLOADS.labels("unreachable").inc()
        raise CommandRefused(
            f"the control plane at {control_plane_url} cannot be reached: {err}"
        ) from err
    if response.status_code >= 400:
        metrics.LOG_UPLOADS.labels("refused").inc()
        raise CommandRefused(
            f"the control plane refused the logs: HTTP {response.status_code} {response.text[:200]}"
        )
    metrics.LOG_UPLOADS.labels("ok").inc()
    answer = response.json()
    size = len(tail.text.encode())
    log.info("uploaded %d bytes of the register's log as %s", size, answer.get("id"))
    return {"log_id": answer.get("id"), "bytes": size, "truncated": tail.truncated}
