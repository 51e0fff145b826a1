"""Moved to :mod:`mqttlink.link`, shared with the control plane's ingest worker (issue 8)."""

from mqttlink.link import NO_DELAY, MqttLink

__all__ = ["NO_DELAY", "MqttLink"]
