"""Receipt printer and cash drawer: layout, durable queue, driver, simulators, preview."""
