"""Rollouts: one release moved to a tenant's devices through waves, gates and windows (issue 11)."""
