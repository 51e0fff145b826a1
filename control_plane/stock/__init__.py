"""Stock across stores: on-hand per store and item projected from the replicated journal,
transfers between stores, low-stock alerts, days of cover and the reorder list (issue 14)."""
