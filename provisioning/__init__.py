"""storefleet: provisioning."""
