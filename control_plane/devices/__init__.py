"""The device registry: tenants, stores, and the appliances at their registers."""
