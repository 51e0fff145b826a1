"""The register's own counters: what cashiers were refused, by the code the screen shows."""

from __future__ import annotations

from prometheus_client import Counter

REFUSALS = Counter(
    "storefleet_register_refusals_total",
    "Cashier commands the register refused (unknown barcode, tender short, bad input …)",
    ["code"],
)

UNKNOWN_TAX_CLASS = Counter(
    "storefleet_register_unknown_tax_class_total",
    "Items refused at the till because their tax class is not in the store's tax table",
    ["tax_class"],
)
UNTAXABLE_ITEMS = Counter(
    "storefleet_register_untaxable_items_total",
    "Catalog items found, when a catalog or configuration arrived, naming a tax class the "
    "store's tax table lacks",
)

STALE_CONNECTION_RETRIES = Counter(
    "storefleet_register_cloud_stale_connection_retries_total",
    "Loyalty requests to the cloud sent again because the kept connection had been closed",
)
