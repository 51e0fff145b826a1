"""storefleet: protocols."""
