"""Barcode scanners: keyboard-wedge through evdev (hot-plug) and serial, with simulators."""
