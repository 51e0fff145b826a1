"""The appliance proves itself on every HTTPS call to the control plane: an httpx ``Auth``.

How it works: :class:`DeviceAuth` reads the key and certificate of the identity directory
(``provisioning.device_keys``) and, for each request, mints a fresh assertion
(``provisioning.device_assertion``: signed with the appliance's own key, 60 s, a new ``jti``)
into ``Authorization: Bearer …``. A fresh one per request, never a reused one: the control plane
refuses a ``jti`` it has seen (replay), and signing costs a fraction of a millisecond. The files
are read again when the certificate file changes (a renewal installed it), so the next request
already presents the new certificate.

A register with a fixed device id (the demo's) has no enrolment; it signs with the identity in
``<its data directory>/identity`` when one was issued there (:func:`device_auth_at`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from edge.enrolment.errors import NotEnrolled
from provisioning import device_assertion
from provisioning.device_keys import DeviceIdentity, IdentityState, common_name

#: Where a register with a fixed device id finds its identity, under its data directory.
FIXED_IDENTITY_SUBDIR = "identity"


@dataclass(frozen=True, slots=True)
class _Loaded:
    """The identity as read, and the file state it was read at."""

    stamp: tuple[int, int, int, int]
    device_id: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


class DeviceAuth(httpx.Auth):
    """Adds this appliance's assertion to every request of an ``httpx`` client."""

    def __init__(
        self,
        identity_dir: Path,
        *,
        audience: str = device_assertion.AUDIENCE,
        lifetime: int = device_assertion.LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.identity = DeviceIdentity(identity_dir)
        self.audience = audience
        self.lifetime = lifetime
        self.clock = clock
        self._loaded: _Loaded | None = None

    def _stamp(self) -> tuple[int, int, int, int]:
        stat = os.stat(self.identity.certificate_path)
        return stat.st_ino, stat.st_mtime_ns, stat.st_size, stat.st_ctime_ns

    def _load(self) -> _Loaded:
        if self.identity.state() is not IdentityState.ENROLLED:
            raise NotEnrolled(str(self.identity.directory))
        stamp = self._stamp()
        if self._loaded is None or self._loaded.stamp != stamp:
            certificate = self.identity.certificate()
            self._loaded = _Loaded(
                stamp=stamp,
                device_id=common_name(certificate),
                key=self.identity.ensure_key(),  # enrolled: the key on disk, never a new one
                certificate=certificate,
            )
        return self._loaded

    @property
    def device_id(self) -> str:
        """The device the assertions speak for (the certificate's CN)."""
        return self._load().device_id

    def assertion(self) -> str:
        """A new assertion, for one request."""
        loaded = self._load()
        return device_assertion.mint(
            private_key=loaded.key,
            certificate=loaded.certificate,
            device_id=loaded.device_id,
            now=self.clock(),
            lifetime=self.lifetime,
            audience=self.audience,
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Sign ``request`` (a redirect or retry goes through here again: a new assertion)."""
        request.headers["Authorization"] = f"Bearer {self.assertion()}"
        yield request


def device_auth_at(identity_dir: Path) -> DeviceAuth | None:
    """The signing ``Auth`` of the identity in ``identity_dir``; None when it holds none."""
    if DeviceIdentity(identity_dir).state() is not IdentityState.ENROLLED:
        return None
    return DeviceAuth(identity_dir)
