"""storefleet: edge."""
