"""Staff PINs from the store configuration: argon2id PHC strings, checked offline, with lockout."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge.checkout.staff import (
    Argon2Pin,
    Employee,
    LockedOut,
    LockoutPolicy,
    LockoutState,
    PinRejected,
    Role,
    SignedIn,
    check_pin,
    sign_in,
)
from tests.harness.store_config import pin_hash

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "matches"),
    [
        pytest.param("2468", True, id="right-pin"),
        pytest.param("2469", False, id="wrong-pin"),
        pytest.param("", False, id="empty"),
    ],
)
def test_argon2_pin(typed: str, matches: bool) -> None:
    assert check_pin(typed, Argon2Pin(pin_hash("2468"))) is matches


def test_a_broken_hash_never_matches() -> None:
    assert check_pin("2468", Argon2Pin("$argon2id$v=19$m=8,t=1,p=1$bm90$bm90")) is False


def test_lockout_after_the_configured_wrong_pins() -> None:
    nora = Employee("C01", "Nora", Role.CASHIER, Argon2Pin(pin_hash("2468")))
    policy = LockoutPolicy(max_attempts=3)
    state = LockoutState()
    outcomes = []
    for _ in range(3):
        result = sign_in(nora, "0000", state=state, now=NOW, policy=policy)
        outcomes.append(type(result))
        state = result.state
    assert outcomes == [PinRejected, PinRejected, LockedOut]
    assert isinstance(sign_in(nora, "2468", state=state, now=NOW, policy=policy), LockedOut)
    later = NOW + policy.lock_for
    assert isinstance(sign_in(nora, "2468", state=state, now=later, policy=policy), SignedIn)
