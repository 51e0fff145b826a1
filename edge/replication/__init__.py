"""Replication of the appliance journal to the cloud: in order, exactly once, acked."""
