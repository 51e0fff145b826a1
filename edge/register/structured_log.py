"""The register's log lines: text for a person, or one JSON object a line for machines.

Every record carries the device id and register id of the register that wrote it (a context
variable, so the demo's several registers in one process each log as themselves), and a sale's
records carry ``sale_id`` and ``seq`` when the code logs them as ``extra``. JSON lines are what
journald, the agent's log file and a log upload keep; grep by ``"sale_id"`` across all three.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal


@dataclass(slots=True)
class Who:
    """The register a task belongs to; its device id is filled in once it is enrolled."""

    device_id: str = ""
    register_id: str = ""


#: The register the current task belongs to (tasks inherit it from the composition).
WHO: ContextVar[Who | None] = ContextVar("register_who", default=None)

#: Fields a record may carry as ``extra`` that the JSON line keeps.
EXTRA_FIELDS = ("sale_id", "seq", "command", "peripheral")

NOISY = ("transitions", "uvicorn.access", "httpx")


class _Who(logging.Filter):
    """Stamps each record with the register it came from."""

    def filter(self, record: logging.LogRecord) -> bool:
        who = WHO.get() or Who()
        record.device_id, record.register_id = who.device_id, who.register_id
        return True


class JsonLines(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, who, and the sale's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "device_id": getattr(record, "device_id", ""),
            "register_id": getattr(record, "register_id", ""),
        }
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _Text(logging.Formatter):
    """Text with the sale's fields appended, so a person sees them too."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = [f"{n}={getattr(record, n)}" for n in EXTRA_FIELDS if hasattr(record, n)]
        return f"{text} {' '.join(fields)}" if fields else text


def configure_logging(fmt: Literal["text", "json"], level: str) -> None:
    """Send the process's logs to stderr in ``fmt`` (called once, by the register's command)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Who())
    handler.setFormatter(
        JsonLines()
        if fmt == "json"
        else _Text("%(asctime)s %(levelname)s %(name)s [%(device_id)s]: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
