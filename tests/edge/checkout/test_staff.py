from datetime import timedelta

import pytest

from edge.checkout.staff import (
    Approval,
    ApprovalRequired,
    Employee,
    IdlePolicy,
    LockedOut,
    LockoutState,
    PinRejected,
    Role,
    SignedIn,
    approve,
    check_pin,
    hash_pin,
    manager_reset,
    should_auto_lock,
    sign_in,
)

from .builders import T0


def employee(role: Role = Role.CASHIER, pin: str = "1234") -> Employee:
    # cheap scrypt parameters keep the test fast; production uses the defaults
    return Employee("e1", "Eva", role, hash_pin(pin, salt=b"fixed-salt-16byt", n=2**4, r=1))


def test_pin_hash_uses_scrypt_and_salt() -> None:
    stored = hash_pin("1234")
    assert check_pin("1234", stored)
    assert not check_pin("1235", stored)
    assert hash_pin("1234").digest != stored.digest  # a fresh salt each time
    assert b"1234" not in stored.digest


def test_right_pin_signs_in() -> None:
    result = sign_in(employee(), "1234", state=LockoutState(), now=T0)
    assert isinstance(result, SignedIn)
    assert result.state == LockoutState()


def test_five_wrong_pins_lock_out() -> None:
    cashier, state = employee(), LockoutState()
    for attempt in range(4):
        result = sign_in(cashier, "0000", state=state, now=T0)
        assert isinstance(result, PinRejected)
        assert result.attempts_left == 4 - attempt
        state = result.state
    locked = sign_in(cashier, "0000", state=state, now=T0)
    assert isinstance(locked, LockedOut)
    assert locked.until == T0 + timedelta(minutes=15)
    # even the right PIN is refused while locked
    still = sign_in(cashier, "1234", state=locked.state, now=T0 + timedelta(minutes=14))
    assert isinstance(still, LockedOut)
    # time unlocks
    later = sign_in(cashier, "1234", state=locked.state, now=T0 + timedelta(minutes=15))
    assert isinstance(later, SignedIn)


def test_manager_reset_unlocks() -> None:
    locked = LockoutState(5, T0 + timedelta(minutes=15))
    assert isinstance(manager_reset(locked, None), ApprovalRequired)
    assert isinstance(manager_reset(locked, Approval("c2", Role.CASHIER)), ApprovalRequired)
    assert manager_reset(locked, Approval("m1", Role.MANAGER)) == LockoutState()


@pytest.mark.parametrize(
    "role", [pytest.param(Role.MANAGER, id="manager"), pytest.param(Role.CASHIER, id="cashier")]
)
def test_approve_returns_approval_only_for_the_right_pin(role: Role) -> None:
    approval, _ = approve(employee(role), "1234", state=LockoutState(), now=T0)
    assert approval is not None
    assert approval.role is role
    none, result = approve(employee(role), "9999", state=LockoutState(), now=T0)
    assert none is None
    assert isinstance(result, PinRejected)


@pytest.mark.parametrize(
    ("idle", "locks"),
    [
        pytest.param(timedelta(seconds=119), False, id="just-before"),
        pytest.param(timedelta(seconds=120), True, id="at-limit"),
        pytest.param(timedelta(seconds=-5), False, id="clock-went-back"),
    ],
)
def test_auto_lock(idle: timedelta, locks: bool) -> None:
    assert should_auto_lock(T0, T0 + idle, IdlePolicy()) is locks
