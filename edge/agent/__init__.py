"""The fleet agent's side of the appliance's hardware: health up, remote commands down.

* ``state`` — the retained ``sf.state`` message with every peripheral's health, on change and
  every N seconds.
* ``commands`` — ``sf.cmd`` in, validated, run against the peripheral hub, ``sf.cmd.result`` out.
* ``session`` — :class:`FleetAgent`, the MQTT connection both run on (reconnect, backoff).
* ``mqtt_link`` — :class:`MqttLink`, that connection with every wait on the broker bounded.
"""
