"""Moved to :mod:`tests.harness.mqtt_relay` (shared with the ingest worker and mqttlink tests)."""

from tests.harness.mqtt_relay import MqttRelay, cancel_after, mqtt_relay, read_packet

__all__ = ["MqttRelay", "cancel_after", "mqtt_relay", "read_packet"]
