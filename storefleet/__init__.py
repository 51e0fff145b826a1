"""The product's composition of both sides: the ``storefleet`` command and the demo.

``control_plane`` (the cloud) and ``edge`` (the appliance) install and start apart and never
import each other; this small package is the one place that imports both, and nothing imports it.
"""
