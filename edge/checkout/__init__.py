"""The sale at the register as pure domain code: money, barcodes, catalog, tax, cart, tenders.

Everything here is I/O-free except the payment terminal simulator and its client, so the ledger
and the kiosk can call it from any thread or loop and the tests can prove it with hypothesis.
"""
