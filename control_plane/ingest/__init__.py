"""Ingest of replicated store journals: exactly once, in order, chain verified."""
