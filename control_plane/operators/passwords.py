"""Password hashing with argon2id (argon2-cffi), off the event loop.

A hash costs tens of milliseconds of CPU and tens of MiB on purpose, so it runs in a worker
thread. An unknown email is checked against a dummy hash of the same parameters, so the answer
takes as long as for a known one and timing tells a guesser nothing. A hash made with older
parameters is upgraded at the next successful login.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from control_plane.operators.settings import OperatorSettings

MIN_PASSWORD_LENGTH = 12


@dataclass(frozen=True, slots=True)
class Verified:
    """A password check: whether it matched, and a new hash when parameters moved on."""

    ok: bool
    rehash: str | None = None


class Passwords:
    """argon2id with the configured cost; one instance per control plane."""

    def __init__(self, settings: OperatorSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self._dummy: str | None = None

    @property
    def parameters(self) -> dict[str, int]:
        """The cost parameters, as the benchmark reports them."""
        return {
            "time_cost": self._hasher.time_cost,
            "memory_kib": self._hasher.memory_cost,
            "parallelism": self._hasher.parallelism,
        }

    def hash_blocking(self, password: str) -> str:
        """An argon2id hash (PHC string) of ``password``; blocks for the whole cost."""
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        """`hash_blocking` in a worker thread."""
        return await asyncio.to_thread(self._hasher.hash, password)

    def _verify_blocking(self, stored: str | None, password: str) -> Verified:
        known = stored is not None
        if stored is None:  # an unknown account: spend the same time on a hash nobody knows
            if self._dummy is None:
                self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
            stored = self._dummy
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verified(ok=False)
        if not known:
            return Verified(ok=False)
        rehash = self._hasher.hash(password) if self._hasher.check_needs_rehash(stored) else None
        return Verified(ok=True, rehash=rehash)

    async def verify(self, stored: str | None, password: str) -> Verified:
        """Check ``password`` against ``stored`` (None: an unknown account, same cost)."""
        return await asyncio.to_thread(self._verify_blocking, stored, password)


def generate_password() -> str:
    """A random password for a new operator, shown once: 24 URL-safe characters, 144 bits."""
    return secrets.token_urlsafe(18)
