"""The appliance ledger: sales and every other business event, committed locally first."""

from edge.ledger.errors import InvalidSale, LedgerCorrupt, LedgerError, MigrationError
from edge.ledger.ledger import Ledger, StoredRecord
from edge.ledger.sales import CommittedSale, SaleDraft, SaleLine, Tender

__all__ = [
    "CommittedSale",
    "InvalidSale",
    "Ledger",
    "LedgerCorrupt",
    "LedgerError",
    "MigrationError",
    "SaleDraft",
    "SaleLine",
    "StoredRecord",
    "Tender",
]
