"""Errors of the appliance ledger.

LedgerError              the ledger refused or could not complete a write; nothing was committed
├── InvalidSale          the sale does not add up (tender short, empty, bad quantity)
├── LedgerCorrupt        integrity check or hash chain failed on open: stop selling, call support
└── MigrationError       the database is from a newer app or a migration failed
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of ledger errors; nothing was committed when one is raised."""


class InvalidSale(LedgerError):  # noqa: N818 - named in the domain's words
    """The sale was refused before anything was written."""

    def __init__(self, reason: str, *, sale_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sale_id = sale_id


class LedgerCorrupt(LedgerError):  # noqa: N818 - named in the domain's words
    """The ledger file failed a check; ``detail`` says which."""

    def __init__(self, detail: str, *, path: str) -> None:
        super().__init__(f"ledger {path} is corrupt: {detail}; keep the file and call support")
        self.detail = detail
        self.path = path


class MigrationError(LedgerError):
    """The schema cannot be brought to this app's version."""
