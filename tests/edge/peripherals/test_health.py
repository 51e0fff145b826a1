"""The shared health model and its Prometheus counters."""

import logging

import pytest

from edge.peripherals.health import DeviceHealth
from edge.peripherals.metrics import DEVICE_EVENTS


def test_failure_is_logged_once_with_what_to_do(caplog: pytest.LogCaptureFixture) -> None:
    health = DeviceHealth(device="front-test", kind="printer")
    with caplog.at_level(logging.WARNING):
        health.failed("front-test: out of paper", connected=True, hint="load paper")
        health.failed("front-test: out of paper", connected=True, hint="load paper")
    assert [r.getMessage() for r in caplog.records] == [
        "printer front-test: out of paper — load paper"
    ]
    health.seen()
    assert (health.connected, health.error) == (True, None)


def test_counts_reach_prometheus_and_the_snapshot() -> None:
    health = DeviceHealth(device="door-test", kind="rfid")
    before = DEVICE_EVENTS.labels(device="door-test", event="frame_garbled")._value.get()
    health.count("frame_garbled", 3)
    after = DEVICE_EVENTS.labels(device="door-test", event="frame_garbled")._value.get()
    assert after - before == 3
    assert health.snapshot()["counters"] == {"frame_garbled": 3}
