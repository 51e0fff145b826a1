"""``python -m edge.agent --settings FILE``: the fleet agent without the command-line framework.

The same agent as ``storefleet agent``; this entry point is the one the appliance's service runs
because it loads neither typer nor rich (~2.5 MB of the agent's 40 MB budget, measured by
bench/appliance.py). A refused setting is one line on stderr naming it, and exit code 2, as the
CLI's framed message; SIGTERM and SIGINT stop the register in order, then the agent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from pathlib import Path

from edge.agent.process import run_agent
from edge.agent.settings import ENV_SETTINGS_FILE, AgentSettingsRefused, load_agent_settings

EXIT_REFUSED = 2


def return_import_heap() -> None:
    """Give the heap that importing and validating left free back to the system.

    Building the message models and settings allocates and frees a few MB; glibc keeps freed heap
    in the process, so the agent — which then runs for months on a small board — would carry it
    as resident memory for good (0.8 MB measured after import). ``malloc_trim(0)`` returns it
    once. Without glibc (musl) there is nothing to call and nothing to do.
    """
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).malloc_trim(0)


def main(argv: list[str] | None = None) -> int:
    """Parse, validate, run until a signal; the process's exit code."""
    from edge.agent.settings_doc import help_epilog

    parser = argparse.ArgumentParser(
        prog="python -m edge.agent",
        description=__doc__,
        epilog=help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--settings",
        type=Path,
        default=os.environ.get(ENV_SETTINGS_FILE) or None,
        help=f"the agent's settings file (TOML or JSON; also {ENV_SETTINGS_FILE})",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    try:
        settings = load_agent_settings(args.settings, environ=os.environ)
    except AgentSettingsRefused as err:
        sys.stderr.write(f"storefleet agent: refused: {err}\n")
        return EXIT_REFUSED
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return_import_heap()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_agent(settings, stop=stop)

    asyncio.run(run())
    sys.stderr.write("fleet agent stopped.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
