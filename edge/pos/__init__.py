"""The register at the till: the checkout domain wired to the ledger, one service per appliance.

``Register`` holds what a till holds (catalog, cart, who is signed in, the shift, parked sales),
turns the pure domain's results into ledger commits and keeps what must survive a restart in its
own small SQLite file (``pos.db``) beside the ledger, never in it.
"""
