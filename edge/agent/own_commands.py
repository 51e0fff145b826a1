"""The agent's own commands, answered whether or not the register runs.

``app.restart`` {} — stop the register (SIGTERM) and start it again now, not counted as a
failure; ``logs.upload`` {max_bytes?} — the register's last logs to the control plane over
HTTPS, the result carrying the upload's id; ``versions.report`` {} — the agent's version, the
running register's release, the active slot and Python; ``os.install`` {image, size, sha256,
reboot?} — a local OS image into the other system slot, tried once
(:mod:`edge.agent.os_install`). Everything else is the register's and goes through the local
socket (:meth:`~edge.agent.register_link.RegisterLink.call`).
"""

from __future__ import annotations

import platform
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field

from edge.agent.commands import CommandArgs, CommandHandler, NoArgs
from edge.agent.log_upload import LogTail, log_tail
from edge.agent.os_install import OsInstallCommandArgs, OsInstaller
from edge.agent.register_link import RegisterLink
from edge.agent.supervisor import Supervisor
from protocols.vocabulary import CommandName

AGENT_VERSION = "0.1.0"

Uploader = Callable[[LogTail], Awaitable[dict[str, Any]]]


class LogsUploadArgs(CommandArgs):
    """``logs.upload``: how much of the end of the log (at most 1 MiB)."""

    max_bytes: int | None = Field(default=None, ge=1, le=1024 * 1024)


def own_handlers(
    *,
    supervisor: Supervisor,
    link: RegisterLink,
    upload: Uploader,
    upload_max_bytes: int,
    slot: Callable[[], str],
    os_installer: OsInstaller | None = None,
) -> dict[str, CommandHandler]:
    """The handlers of the agent's own commands, by name."""

    async def app_restart(_args: NoArgs) -> dict[str, Any]:
        replaced = supervisor.restart()
        return {"restarting": True, "replaced_pid": replaced}

    async def logs_upload(args: LogsUploadArgs) -> dict[str, Any]:
        tail = log_tail(supervisor.log_path, max_bytes=args.max_bytes or upload_max_bytes)
        return await upload(tail)

    async def versions_report(_args: NoArgs) -> dict[str, Any]:
        hello = link.hello
        return {
            "agent": AGENT_VERSION,
            "app": hello.release if hello is not None else None,
            "slot": slot(),
            "python": platform.python_version(),
            "register_pid": hello.pid if hello is not None else None,
        }

    handlers: dict[str, CommandHandler] = {
        CommandName.APP_RESTART: CommandHandler(NoArgs, app_restart),
        CommandName.LOGS_UPLOAD: CommandHandler(LogsUploadArgs, logs_upload),
        CommandName.VERSIONS_REPORT: CommandHandler(NoArgs, versions_report),
    }
    if os_installer is not None:
        handlers[CommandName.OS_INSTALL] = CommandHandler(
            OsInstallCommandArgs, os_installer.install
        )
    return handlers
