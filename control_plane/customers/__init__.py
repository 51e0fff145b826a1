"""Customers of a tenant's stores: sealed profiles, blind-index search, GDPR, digital receipts."""
