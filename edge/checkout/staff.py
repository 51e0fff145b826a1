"""Employees, PINs, lockout, manager approval and the idle auto-lock, as pure functions.

How it works: a PIN is stored as ``PinHash`` (scrypt with a per-employee salt; a store file's form)
or ``Argon2Pin`` (an argon2id PHC string: what the control plane's configuration delivers,
:mod:`protocols.store_config`); ``check_pin`` compares in constant time. Sign-in is a pure state
transition over ``LockoutState``: the caller (the ledger) stores the returned state and passes it
back next time, and passes ``now`` — nothing here reads the clock. Five wrong PINs lock the
employee until ``now + lock_for`` or a manager reset. A manager approval is a value (``Approval``)
that the cart and returns accept; when one is missing they return ``ApprovalRequired`` saying which
role must approve what.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeAlias

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Role(enum.IntEnum):
    """Roles in order of authority; a higher role may do what a lower one may."""

    CASHIER = 1
    MANAGER = 2


@dataclass(frozen=True, slots=True)
class PinHash:
    """scrypt(PIN, salt) with its cost parameters, so they can be raised later."""

    salt: bytes
    digest: bytes
    n: int = 2**14
    r: int = 8
    p: int = 1


@dataclass(frozen=True, slots=True)
class Argon2Pin:
    """An argon2id PHC string (``$argon2id$v=19$m=…,t=…,p=…$salt$hash``), salt and costs inside."""

    phc: str


StoredPin: TypeAlias = PinHash | Argon2Pin
#: Verifies whatever costs the PHC string names (the schema bounds them).
_ARGON2 = PasswordHasher()


def hash_pin(pin: str, *, salt: bytes | None = None, n: int = 2**14, r: int = 8) -> PinHash:
    """Hash a PIN with scrypt; a fresh 16-byte salt unless one is given (tests pin it)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=1, dklen=32)
    return PinHash(salt=salt, digest=digest, n=n, r=r, p=1)


def check_pin(pin: str, stored: StoredPin) -> bool:
    """Whether ``pin`` matches, compared in constant time."""
    if isinstance(stored, Argon2Pin):
        try:
            return _ARGON2.verify(stored.phc, pin)
        except (VerificationError, InvalidHashError):
            return False
    digest = hashlib.scrypt(
        pin.encode(), salt=stored.salt, n=stored.n, r=stored.r, p=stored.p, dklen=32
    )
    return hmac.compare_digest(digest, stored.digest)


@dataclass(frozen=True, slots=True)
class Employee:
    """Someone who may sign in at the register."""

    id: str
    name: str
    role: Role
    pin: StoredPin


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """How many wrong PINs lock an employee, and for how long."""

    max_attempts: int = 5
    lock_for: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class LockoutState:
    """Wrong PINs in a row and, when locked, until when."""

    failed_attempts: int = 0
    locked_until: datetime | None = None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The PIN matched; ``state`` is reset."""

    employee: Employee
    state: LockoutState


@dataclass(frozen=True, slots=True)
class PinRejected:
    """The PIN did not match; ``attempts_left`` before the lock."""

    state: LockoutState
    attempts_left: int


@dataclass(frozen=True, slots=True)
class LockedOut:
    """Locked until ``until`` (or a manager reset); the PIN was not even checked."""

    state: LockoutState
    until: datetime


SignInResult: TypeAlias = SignedIn | PinRejected | LockedOut


def sign_in(
    employee: Employee,
    pin: str,
    *,
    state: LockoutState,
    now: datetime,
    policy: LockoutPolicy = LockoutPolicy(),
) -> SignInResult:
    """Check a PIN against the lockout state; the caller stores the returned state."""
    if state.is_locked(now) and state.locked_until is not None:
        return LockedOut(state=state, until=state.locked_until)
    if state.locked_until is not None:  # the lock has expired: start counting afresh
        state = LockoutState()
    if check_pin(pin, employee.pin):
        return SignedIn(employee=employee, state=LockoutState())
    failed = state.failed_attempts + 1
    if failed >= policy.max_attempts:
        until = now + policy.lock_for
        return LockedOut(state=LockoutState(failed, until), until=until)
    return PinRejected(
        state=replace(state, failed_attempts=failed), attempts_left=policy.max_attempts - failed
    )


@dataclass(frozen=True, slots=True)
class Approval:
    """Proof that ``approver_id`` with ``role`` approved; the journal records who."""

    approver_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class ApprovalRequired:
    """What the kiosk must obtain before retrying: a ``role`` to approve ``action``."""

    action: str
    reason: str
    role: Role = Role.MANAGER


def can_approve(approval: Approval | None, required: Role) -> bool:
    """The manager-override check itself: is there an approval of at least ``required``?"""
    return approval is not None and approval.role >= required


def approve(
    approver: Employee,
    pin: str,
    *,
    state: LockoutState,
    now: datetime,
    policy: LockoutPolicy = LockoutPolicy(),
) -> tuple[Approval | None, SignInResult]:
    """A manager types their PIN on the cashier's screen; an approval only when it matches."""
    result = sign_in(approver, pin, state=state, now=now, policy=policy)
    if isinstance(result, SignedIn):
        return Approval(approver_id=approver.id, role=approver.role), result
    return None, result


def manager_reset(
    state: LockoutState, approval: Approval | None
) -> LockoutState | ApprovalRequired:
    """A manager unlocks an employee before the lock expires."""
    if not can_approve(approval, Role.MANAGER):
        return ApprovalRequired(action="unlock employee", reason="locked after wrong PINs")
    return LockoutState()


@dataclass(frozen=True, slots=True)
class IdlePolicy:
    """Lock the register after this long without input."""

    lock_after: timedelta = timedelta(minutes=2)


def should_auto_lock(last_activity: datetime, now: datetime, policy: IdlePolicy) -> bool:
    """Whether the register must lock now; a clock that went backwards never locks."""
    return now - last_activity >= policy.lock_after
