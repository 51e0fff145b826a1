"""Replicated sales, as the cloud sees them."""
