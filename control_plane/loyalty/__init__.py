"""Loyalty's cloud ledger: points and store credit per customer, projected from the journal."""
