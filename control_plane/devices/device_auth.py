"""Devices prove themselves on every HTTPS call: the one dependency of every device route.

How it works, per request (``DeviceDep``):

1. ``Authorization: Bearer <assertion>``: a JWS the appliance signed with its own key for this
   request (``provisioning.device_assertion``: RFC 7523 / ``private_key_jwt`` shape, ``x5c`` and
   ``x5t#S256`` naming its certificate).
2. The certificate in the header (parsed once per certificate, kept in a bounded cache), the
   signature under the certificate's key and algorithm, then the claims: ``iss == sub``,
   ``aud`` = the control plane, ``exp - iat`` ≤ 120 s, ``iat``/``exp`` within 30 s of this
   clock (``CLOCK_SKEW``, both ways).
3. The registry, in one query: the device exists and is not decommissioned, and the presented
   certificate is one the CA issued to it (serial and key hash, as recorded at issuance) as its
   device certificate, not revoked, not expired, and its newest (a certificate renewed since
   is refused: "superseded").
   Certificate renewal alone also accepts a superseded one that is still valid, so an appliance
   whose renewal answer was lost can ask again (the key is the same one either way).
   The rows are kept per device for ``registry_cache_seconds`` (5 s): a registry round trip on
   every call costs more than the whole 1 ms budget on a loaded node (bench/trust.py), as for
   operators' sessions. So a revocation or decommission reaches a device seen in the last 5 s
   within 5 s, on every instance; a renewal here forgets the device's rows at once, and a
   certificate the kept rows do not know is always read afresh.
   The agent's certificate (CN ``<id>.agent``, same key) is refused here: it exists so the
   agent's broker session has a client id of its own, not as a second HTTPS identity. The agent
   signs its calls (renewal, log upload, bundle downloads) with the device certificate, which
   proves the same key; accepting both would give no call anything more and would leave two
   names to check for one device ("agent_certificate" when one is presented anyway).
4. The ``jti`` is remembered until the token expires (plus the skew): the same token twice is
   refused as a replay. The memory is bounded: at most ``per_device`` live tokens per device
   and ``capacity`` in all; beyond either, the device is told to slow down (429), never is an
   older token forgotten early.

The route gets the device's registry entry (:class:`DeviceEntry`): tenant and store come from
there, never from the client. ``OwnDeviceDep`` also requires the ``{device_id}`` of the path
to be the caller's own. Each refusal is a 401 problem with ``WWW-Authenticate: Bearer``
(RFC 6750 ``error="invalid_token"``), counted by its fine reason in
``storefleet_device_auth_refusals_total`` and logged once by the problem handler.

Several instances: the replay memory is per process. A token captured in flight could be
replayed once on *another* instance within its 60-120 s; TLS makes capture the hard part.
Routing a device to one instance (consistent hashing on the device id) or a shared store of
``(device, jti)`` with a unique key closes that; nothing else here assumes one instance.

Refusals::

    DeviceAuthError                401
    ├── DeviceTokenMissing         401  no ``Authorization: Bearer`` header
    ├── DeviceTokenInvalid         401  malformed, wrong signature, audience, key or lifetime
    ├── DeviceTokenExpired         401  exp is past: the appliance's clock is behind
    ├── DeviceTokenNotYetValid     401  iat is in the future: the appliance's clock is ahead
    ├── DeviceTokenReplayed        401  this token was used already
    ├── DeviceCertificateRefused   401  unknown, revoked, expired or superseded certificate
    └── DeviceRetired              401  the device is decommissioned (or replaced)
    DeviceNotYours                 403  a device route for another device than the caller
    DeviceTokenFlood               429  too many live tokens for the device (or in all)
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from types import MappingProxyType
from typing import Annotated, ClassVar

from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from fastapi import Depends, Request
from prometheus_client import Counter
from sqlalchemy import RowMapping, bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import engine_of
from control_plane.devices.tables import devices
from control_plane.inputs import DeviceIdPath
from control_plane.operators.errors import RateLimited
from control_plane.operators.gatekeeper import get_gatekeeper
from control_plane.problems import DomainError
from control_plane.provisioning.tables import issued_certificates
from provisioning import device_assertion
from provisioning.ca import AGENT_SUFFIX, DEVICE_KIND
from provisioning.device_assertion import AssertionRefused
from provisioning.device_keys import common_name
from provisioning.errors import DeviceIdentityError
from provisioning.keys import public_key_fingerprint

REALM = "storefleet-devices"

REFUSALS = Counter(
    "storefleet_device_auth_refusals_total",
    "Device HTTPS calls refused by device authentication, by fine reason",
    ["reason"],
)


class DeviceAuthError(DomainError):
    """A device call that proves nothing about who sent it."""

    status: ClassVar[int] = HTTPStatus.UNAUTHORIZED
    reason: ClassVar[str] = "device_unauthenticated"
    advice = "send 'Authorization: Bearer <assertion>' signed with the device's key"

    def __init__(self, detail: str, *, why: str) -> None:
        super().__init__(detail)
        self.why = why  # the fine reason: the metric's label
        error = "" if why == "missing" else f', error="invalid_token", error_description="{why}"'
        self.headers = MappingProxyType({"WWW-Authenticate": f'Bearer realm="{REALM}"{error}'})


class DeviceTokenMissing(DeviceAuthError):  # noqa: N818 - named for what was refused
    """No credentials at all."""

    reason = "device_token_missing"


class DeviceTokenInvalid(DeviceAuthError):  # noqa: N818 - named for what was refused
    """Credentials that are not a valid assertion of the device they name."""

    reason = "device_token_invalid"
    advice = "mint the assertion with the key and certificate of the device's identity directory"


class DeviceTokenExpired(DeviceAuthError):  # noqa: N818 - named for what was refused
    """An assertion past its ``exp``."""

    reason = "device_token_expired"
    advice = "mint a new assertion per request; if it was new, check the appliance's clock (NTP)"


class DeviceTokenNotYetValid(DeviceAuthError):  # noqa: N818 - named for what was refused
    """An assertion issued in the future of this clock."""

    reason = "device_token_not_yet_valid"
    advice = "the appliance's clock is ahead of the control plane's: check its NTP"


class DeviceTokenReplayed(DeviceAuthError):  # noqa: N818 - named for what was refused
    """An assertion seen before."""

    reason = "device_token_replayed"
    advice = "mint a new assertion (a new jti) for every request"


class DeviceCertificateRefused(DeviceAuthError):  # noqa: N818 - named for what was refused
    """The presented certificate is not the device's current one."""

    reason = "device_certificate_refused"
    advice = "use the newest certificate of the identity directory; renew or enrol again"


class DeviceRetired(DeviceAuthError):  # noqa: N818 - named for what was refused
    """The device was decommissioned or replaced."""

    reason = "device_decommissioned_refused"
    advice = "this appliance was taken out of the fleet: enrol it again with a new code"


class DeviceNotYours(DomainError):  # noqa: N818 - named for what was refused
    """A device route of another device than the one that signed."""

    status: ClassVar[int] = HTTPStatus.FORBIDDEN
    reason: ClassVar[str] = "device_not_yours"
    advice = "a device may act on its own id only"

    def __init__(self, *, caller: str, target: str) -> None:
        super().__init__(f"device {caller!r} may not act for device {target!r}")
        self.why = "not_yours"


class DeviceTokenFlood(DomainError):  # noqa: N818 - named for what was refused
    """Too many live assertions: the device (or the fleet) is minting faster than it may."""

    status: ClassVar[int] = HTTPStatus.TOO_MANY_REQUESTS
    reason: ClassVar[str] = "device_token_flood"
    advice = "slow down: wait for the Retry-After seconds"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.why = "flood"
        self.headers = MappingProxyType({"Retry-After": str(retry_after)})


#: What each device route may be refused with, for ``problem_responses``.
DEVICE_AUTH_REFUSALS = (
    DeviceTokenMissing,
    DeviceTokenInvalid,
    DeviceTokenExpired,
    DeviceTokenNotYetValid,
    DeviceTokenReplayed,
    DeviceCertificateRefused,
    DeviceRetired,
    DeviceTokenFlood,
)
#: ... and a route for one ``{device_id}``, which must be the caller's.
OWN_DEVICE_REFUSALS = (*DEVICE_AUTH_REFUSALS, DeviceNotYours)

_BY_ASSERTION_REASON: dict[str, type[DeviceAuthError]] = {
    "expired": DeviceTokenExpired,
    "not_yet_valid": DeviceTokenNotYetValid,
}


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    """The registry entry of the device that signed: what device routes scope by."""

    device_id: str
    tenant_id: str
    store_id: str
    register_name: str
    certificate_serial: str  # hex, as ``issued_certificates`` keeps it


@dataclass(frozen=True, slots=True)
class _Certificate:
    """What a presented certificate is, parsed once."""

    thumbprint: str
    serial: str
    common_name: str
    public_key: CertificatePublicKeyTypes
    key_sha256: str


class _CertificateCache:
    """Parsed certificates by their x5c text; a certificate never changes, so none goes stale."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._kept: dict[str, _Certificate] = {}

    def certificate(self, seen: device_assertion.Presented) -> _Certificate:
        """The certificate ``seen`` carries, if the header's thumbprint is its thumbprint."""
        kept = self._kept.get(seen.chain)
        if kept is not None and kept.thumbprint == seen.thumbprint:
            return kept
        certificate = device_assertion.certificate_of(seen)  # checks the thumbprint
        try:
            name = common_name(certificate)
        except DeviceIdentityError as err:
            raise AssertionRefused("malformed", "the certificate names no device") from err
        parsed = _Certificate(
            thumbprint=seen.thumbprint,
            serial=format(certificate.serial_number, "x"),
            common_name=name,
            public_key=certificate.public_key(),
            key_sha256=public_key_fingerprint(certificate.public_key()),
        )
        if len(self._kept) >= self.capacity:
            self._kept.clear()  # a fleet's worth of certificates; refilled one request each
        self._kept[seen.chain] = parsed
        return parsed


class ReplayGuard:
    """Every accepted ``(device, jti)`` until its token expires; bounded per device and in all."""

    def __init__(self, *, capacity: int, per_device: int) -> None:
        self.capacity = capacity
        self.per_device = per_device
        self._until: dict[tuple[str, str], float] = {}
        self._expiries: list[tuple[float, str, str]] = []
        self._live: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._until)

    def _forget_expired(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] < now:
            _, device_id, jti = heapq.heappop(self._expiries)
            del self._until[device_id, jti]
            left = self._live[device_id] - 1
            if left:
                self._live[device_id] = left
            else:
                del self._live[device_id]

    def accept(self, *, device_id: str, jti: str, until: float, now: float) -> None:
        """Remember ``jti`` until ``until``; refuse one already remembered, or no room."""
        self._forget_expired(now)
        if (device_id, jti) in self._until:
            raise DeviceTokenReplayed(
                f"device {device_id!r} sent assertion {jti!r} before", why="replayed"
            )
        retry = max(1, int(min(until, self._expiries[0][0] if self._expiries else until) - now))
        if self._live.get(device_id, 0) >= self.per_device:
            raise DeviceTokenFlood(
                f"device {device_id!r} has {self.per_device} live assertions", retry_after=retry
            )
        if len(self._until) >= self.capacity:
            raise DeviceTokenFlood(
                f"the control plane holds {self.capacity} live device assertions",
                retry_after=retry,
            )
        self._until[device_id, jti] = until
        heapq.heappush(self._expiries, (until, device_id, jti))
        self._live[device_id] = self._live.get(device_id, 0) + 1


def wall_clock() -> float:
    """Seconds since the epoch."""
    return time.time()


class DeviceVerifier:
    """Device authentication for one control plane: caches, replay memory, clock, limits."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        clock: Callable[[], float] = wall_clock,
        audience: str = device_assertion.AUDIENCE,
        skew: float = device_assertion.CLOCK_SKEW,
        max_lifetime: float = device_assertion.MAX_LIFETIME,
        capacity: int = 200_000,
        per_device: int = 1_000,
        registry_cache_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.registry_cache_seconds = registry_cache_seconds
        self.monotonic = monotonic
        self._kept: dict[str, tuple[float, Sequence[RowMapping]]] = {}
        self.audience = audience
        self.skew = skew
        self.max_lifetime = max_lifetime
        self.certificates = _CertificateCache(capacity=10_000)
        self.replays = ReplayGuard(capacity=capacity, per_device=per_device)

    async def verify(self, authorization: str | None, *, allow_superseded: bool) -> DeviceEntry:
        """The registry entry of the device whose assertion ``authorization`` carries."""
        if authorization is None:
            raise DeviceTokenMissing("this route needs the device's assertion", why="missing")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise DeviceTokenInvalid("the Authorization header is not 'Bearer …'", why="scheme")
        now = self.clock()
        try:
            seen = device_assertion.presented(token.strip())
            certificate = self.certificates.certificate(seen)
            claims = device_assertion.check_claims(
                device_assertion.verified_claims(seen, public_key=certificate.public_key),
                now=now,
                audience=self.audience,
                skew=self.skew,
                max_lifetime=self.max_lifetime,
            )
        except AssertionRefused as err:
            refusal = _BY_ASSERTION_REASON.get(err.reason, DeviceTokenInvalid)
            raise refusal(f"device assertion refused: {err.detail}", why=err.reason) from err
        if certificate.common_name.endswith(AGENT_SUFFIX):
            raise DeviceCertificateRefused(
                f"certificate {certificate.serial} ({certificate.common_name!r}) is a fleet "
                "agent's broker certificate; sign device calls with the device certificate",
                why="agent_certificate",
            )
        if claims.device_id != certificate.common_name:
            raise DeviceTokenInvalid(
                f"the assertion names device {claims.device_id!r} but its certificate is "
                f"{certificate.common_name!r}'s",
                why="other_device",
            )
        entry = await self._registry_entry(
            claims.device_id, certificate, now=now, allow_superseded=allow_superseded
        )
        self.replays.accept(
            device_id=claims.device_id, jti=claims.jti, until=claims.expires_at + self.skew, now=now
        )
        return entry

    def forget(self, device_id: str | None = None) -> None:
        """Drop the kept registry rows of ``device_id`` (or all): it was renewed or retired here."""
        if device_id is None:
            self._kept.clear()
        else:
            self._kept.pop(device_id, None)

    async def _rows(self, device_id: str, serial: str) -> Sequence[RowMapping]:
        """The device's registry rows: kept ones if fresh and they know ``serial``, else read."""
        kept = self._kept.get(device_id)
        moment = self.monotonic()
        fresh = kept is not None and moment - kept[0] < self.registry_cache_seconds
        if kept is not None and fresh and any(row["serial"] == serial for row in kept[1]):
            return kept[1]
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_REGISTRY_ROWS, {"device_id": device_id})).mappings().all()
        if self.registry_cache_seconds > 0:
            if len(self._kept) >= _KEEP_AT_MOST:
                self._kept.clear()
            self._kept[device_id] = (moment, rows)
        return rows

    async def _registry_entry(
        self, device_id: str, presented: _Certificate, *, now: float, allow_superseded: bool
    ) -> DeviceEntry:
        rows = await self._rows(device_id, presented.serial)
        if not rows:
            raise DeviceCertificateRefused(
                f"device {device_id!r} is not in the registry", why="unknown_device"
            )
        first = rows[0]
        if first["decommissioned_at"] is not None:
            raise DeviceRetired(f"device {device_id!r} is decommissioned", why="decommissioned")
        _current_certificate(
            device_id, presented, rows, now_ms=int(now * 1000), allow_superseded=allow_superseded
        )
        return DeviceEntry(
            device_id=device_id,
            tenant_id=first["tenant_id"],
            store_id=first["store_id"],
            register_name=first["register_name"],
            certificate_serial=presented.serial,
        )


#: One query per look-up: the device's registry row joined with every certificate issued to it.
_REGISTRY_ROWS = (
    select(
        devices.c.tenant_id,
        devices.c.store_id,
        devices.c.register_name,
        devices.c.decommissioned_at,
        issued_certificates.c.serial,
        issued_certificates.c.kind,
        issued_certificates.c.public_key_sha256,
        issued_certificates.c.not_before,
        issued_certificates.c.not_after,
        issued_certificates.c.revoked_at,
    )
    .select_from(
        devices.outerjoin(issued_certificates, issued_certificates.c.device_id == devices.c.id)
    )
    .where(devices.c.id == bindparam("device_id"))
)
_KEEP_AT_MOST = 100_000  # devices whose rows are kept; beyond, all are dropped and read again


def _current_certificate(
    device_id: str,
    presented: _Certificate,
    rows: Sequence[RowMapping],
    *,
    now_ms: int,
    allow_superseded: bool,
) -> None:
    """Refuse ``presented`` unless it is the device's current certificate in ``rows``."""
    mine = next((r for r in rows if r["serial"] == presented.serial), None)
    if mine is None or mine["public_key_sha256"] != presented.key_sha256:
        raise DeviceCertificateRefused(
            f"certificate {presented.serial} was not issued to device {device_id!r} for this key",
            why="unknown_certificate",
        )
    if mine["kind"] != DEVICE_KIND:
        raise DeviceCertificateRefused(
            f"certificate {presented.serial} of {device_id!r} is its agent's broker certificate; "
            "sign device calls with the device certificate",
            why="agent_certificate",
        )
    if mine["revoked_at"] is not None:
        raise DeviceCertificateRefused(
            f"certificate {presented.serial} of {device_id!r} is revoked", why="revoked"
        )
    if not mine["not_before"] <= now_ms < mine["not_after"]:
        raise DeviceCertificateRefused(
            f"certificate {presented.serial} of {device_id!r} is not valid now", why="expired"
        )
    newer = [
        r["serial"]
        for r in rows
        if r["serial"] is not None
        and r["kind"] == DEVICE_KIND
        and r["revoked_at"] is None
        and r["not_before"] > mine["not_before"]
        and r["not_before"] <= now_ms < r["not_after"]
    ]
    if newer and not allow_superseded:
        raise DeviceCertificateRefused(
            f"certificate {presented.serial} of {device_id!r} was renewed since (now "
            f"{newer[0]}); use the newest certificate",
            why="superseded",
        )


def get_device_verifier(request: Request) -> DeviceVerifier:
    """The app's device verifier, made on first use (one replay memory per process)."""
    state = request.app.state
    verifier: DeviceVerifier | None = getattr(state, "device_verifier", None)
    if verifier is None:
        verifier = DeviceVerifier(engine=engine_of(request))
        state.device_verifier = verifier
    return verifier


async def _authenticate(request: Request, *, allow_superseded: bool) -> DeviceEntry:
    verifier = get_device_verifier(request)
    try:
        return await verifier.verify(
            request.headers.get("authorization"), allow_superseded=allow_superseded
        )
    except (DeviceAuthError, DeviceTokenFlood) as err:
        REFUSALS.labels(err.why).inc()
        if isinstance(err, DeviceAuthError):
            # a call that proves nothing spends its address's anonymous API budget, as an
            # operator's does: a flood of them is answered 429 with Retry-After, not verified
            # one ES256 signature at a time; a device's good calls spend nothing
            try:
                await get_gatekeeper(request).limit_client(request, action="device")
            except RateLimited as limited:
                raise limited from err
        raise


async def authenticate_device(request: Request) -> DeviceEntry:
    """The device that signed this request's assertion (its current certificate only)."""
    return await _authenticate(request, allow_superseded=False)


def _own(entry: DeviceEntry, device_id: str) -> DeviceEntry:
    if entry.device_id != device_id:
        REFUSALS.labels("not_yours").inc()
        raise DeviceNotYours(caller=entry.device_id, target=device_id)
    return entry


DeviceDep = Annotated[DeviceEntry, Depends(authenticate_device)]
VerifierDep = Annotated[DeviceVerifier, Depends(get_device_verifier)]


async def own_device(device_id: DeviceIdPath, entry: DeviceDep) -> DeviceEntry:
    """The calling device, which must be the route's ``{device_id}``."""
    return _own(entry, device_id)


async def renewing_device(request: Request, device_id: DeviceIdPath) -> DeviceEntry:
    """Like :func:`own_device`, also with a superseded (still valid) certificate: a renewal
    whose answer was lost is asked again with the certificate the appliance still has."""
    return _own(await _authenticate(request, allow_superseded=True), device_id)


OwnDeviceDep = Annotated[DeviceEntry, Depends(own_device)]
RenewingDeviceDep = Annotated[DeviceEntry, Depends(renewing_device)]
