"""Releases: signed app bundles the platform publishes and serves to devices (issue 11)."""
