"""Store peripherals: receipt printer and cash drawer, barcode scanners, RFID readers.

One package per kind of device; in each, a driver behind a small ``typing.Protocol``, a service
that owns the device and reports its :class:`~edge.peripherals.health.DeviceHealth`, and a
simulator beside it that speaks the real wire protocol (ESC/POS over TCP or serial, evdev key
events, LLRP over TCP, the R2000 serial frames). The ledger and the kiosk never import a
driver; they talk to the services.

* ``printer/`` — layout (python-escpos), durable print queue, DLE EOT status, ESC/POS preview.
* ``scanner/`` — keyboard-wedge (evdev) with hot-plug, serial scanners.
* ``rfid/`` — LLRP and serial UHF reader clients, read de-duplication, stock count sessions.
"""
