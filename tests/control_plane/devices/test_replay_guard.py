"""The replay memory of device assertions: each jti once while it lives, bounded, never early."""

from __future__ import annotations

import pytest

from control_plane.devices.device_auth import DeviceTokenFlood, DeviceTokenReplayed, ReplayGuard


def test_a_jti_is_refused_while_its_token_lives_and_forgotten_after() -> None:
    guard = ReplayGuard(capacity=10, per_device=10)
    guard.accept(device_id="d1", jti="j", until=100.0, now=0.0)

    with pytest.raises(DeviceTokenReplayed):
        guard.accept(device_id="d1", jti="j", until=100.0, now=99.0)
    guard.accept(device_id="d2", jti="j", until=200.0, now=99.0)  # another device's own jti
    guard.accept(device_id="d1", jti="j", until=300.0, now=100.5)  # the old one expired

    assert len(guard) == 2


def test_a_device_with_too_many_live_tokens_is_told_to_wait() -> None:
    guard = ReplayGuard(capacity=100, per_device=3)
    for n in range(3):
        guard.accept(device_id="busy", jti=f"j{n}", until=60.0 + n, now=0.0)

    with pytest.raises(DeviceTokenFlood) as flood:
        guard.accept(device_id="busy", jti="j3", until=63.0, now=1.0)
    guard.accept(device_id="calm", jti="j0", until=61.0, now=1.0)

    assert flood.value.status == 429
    assert flood.value.headers["Retry-After"] == "59"  # when the oldest live one expires
    assert len(guard) == 4


def test_a_full_memory_refuses_rather_than_forgets() -> None:
    guard = ReplayGuard(capacity=2, per_device=10)
    guard.accept(device_id="d1", jti="a", until=50.0, now=0.0)
    guard.accept(device_id="d2", jti="b", until=50.0, now=0.0)

    with pytest.raises(DeviceTokenFlood):
        guard.accept(device_id="d3", jti="c", until=50.0, now=1.0)
    with pytest.raises(DeviceTokenReplayed):
        guard.accept(device_id="d1", jti="a", until=50.0, now=2.0)
    guard.accept(device_id="d3", jti="c", until=90.0, now=51.0)

    assert len(guard) == 1
