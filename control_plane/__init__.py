"""storefleet: control_plane."""
