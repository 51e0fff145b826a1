"""What the appliance and the control plane share to talk to the broker and keep loops running.

Unlike :mod:`protocols` (the wire contract, no I/O), this package does I/O. It imports neither
side (``edge``, ``control_plane``), so both can use it and still install apart.

* ``link`` — :class:`~mqttlink.link.MqttLink`, an MQTT connection whose every wait is bounded by
  ``asyncio.timeout`` (never aiomqtt's ``wait_for``, which swallows cancellations on 3.11).
* ``backoff`` — :class:`~mqttlink.backoff.Backoff`, the one reconnect-with-backoff.
* ``reconnect`` — :func:`~mqttlink.reconnect.reconnect_forever`, the loop that holds a broker
  connection, and :func:`~mqttlink.reconnect.retry_forever`, the same loop for any connection
  (a serial port, an RFID reader, the agent's local socket).
* ``tasks`` — :class:`~mqttlink.tasks.ServiceTasks`, the one way to run a service's background
  tasks: named, none outliving its service, a death stopping the service or supervised again.
"""
