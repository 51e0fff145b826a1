"""The contract's words: the journal kinds the register writes and the commands an appliance runs.

Both sides import these instead of spelling the strings, so a kind the register writes and the
kind the cloud reads cannot drift apart. They are ``StrEnum``: a member *is* its string, equal to
it, hashed like it and serialised as it, so the wire and the hash chain are unchanged.

On the wire ``kind`` and ``name`` stay plain strings (see :mod:`protocols.messages`): a receiver
older than the sender stores a kind it does not know, or answers "unknown command", instead of
refusing the whole message.
"""

from __future__ import annotations

from enum import StrEnum, unique


@unique
class JournalKind(StrEnum):
    """Every kind of business event the register commits to its journal."""

    # the checkout (edge/checkout): sales, voids, returns, shifts and their reports
    SALE_COMPLETED = "sale.completed"
    SALE_VOIDED = "sale.voided"
    SALE_RETURNED = "sale.returned"
    SHIFT_OPENED = "shift.opened"
    SHIFT_CASH_MOVED = "shift.cash_moved"
    SHIFT_CLOSED = "shift.closed"
    REPORT_X = "report.x"
    REPORT_Z = "report.z"
    # stock (edge/stock, edge/peripherals/rfid): goods in, adjustments, counts
    STOCK_RECEIVED = "stock.received"
    STOCK_ADJUSTED = "stock.adjusted"
    STOCK_COUNT_COMMITTED = "stock_count.committed"
    # stock between stores (protocols/stock_transfer.py): the sending and the receiving store
    STOCK_TRANSFER_SENT = "stock.transfer_sent"
    STOCK_TRANSFER_RECEIVED = "stock.transfer_received"
    # the peripheral hub: a drawer opened outside a sale
    DRAWER_OPENED = "drawer.opened"


@unique
class CommandName(StrEnum):
    """Every remote command the fleet agent runs (``edge/agent/commands.py``)."""

    STOCK_COUNT_START = "stock_count.start"
    STOCK_COUNT_STOP = "stock_count.stop"
    PRINTER_TEST_PAGE = "printer.test_page"
    DRAWER_OPEN = "drawer.open"
    # the agent's own (edge/agent/own_commands.py): answered even when the register is down
    APP_RESTART = "app.restart"
    LOGS_UPLOAD = "logs.upload"
    VERSIONS_REPORT = "versions.report"
    # a local OS image into the other system slot, tried once at the next boot (os_install.py)
    OS_INSTALL = "os.install"


@unique
class EventKind(StrEnum):
    """Every kind of event the fleet agent publishes on ``events``."""

    APP_CRASH_LOOP = "app.crash_loop"  # the register failed N starts in a row
    APP_RECOVERED = "app.recovered"  # it runs healthy again after a crash loop
    APP_RESTARTED = "app.restarted"  # the agent started it again (crash, hang, command)
    RELEASE_PROGRESS = "release.progress"  # a release's state on the device (release_bundle)
    # an OS update's state on the appliance: a system slot tried, committed or reverted (a
    # revert is a failure); the body is release_bundle's ReleaseProgress, rollout None
    OS_UPDATE = "os.update"
    CONFIG_APPLIED = "config.applied"  # a configuration version applied (live or by restart)
    CONFIG_REFUSED = "config.refused"  # a configuration refused on the device; the last good stays
