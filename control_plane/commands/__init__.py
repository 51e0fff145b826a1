"""Remote commands to a device's hardware: sent over MQTT, answered on ``cmd/result``, kept here."""
