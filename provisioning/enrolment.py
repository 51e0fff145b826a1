"""Enrolment: what the QR code carries, the token behind it, and when redeeming it is allowed.

How it works
- An operator creates an enrolment for a store: `new_enrolment` returns the payload for the QR
  (control-plane URL, a 192-bit token, the CA fingerprint to pin, tenant and store), a short
  fallback code for typing, and the `EnrolmentRecord` to store, which holds only hashes.
- The QR holds `encode_qr(payload)`, a compact URI `sfenrol:1?u=…&t=…&f=…&tn=…&s=…`; the
  appliance reads it back with `parse_qr`, which raises `EnrolmentPayloadError` with what to do.
- When the appliance redeems the token with its CSR, the control plane finds the record by
  `hash_token(token)` (or `hash_fallback_code(code)`) and asks `check_enrolment` whether it may
  proceed. The rules, in order: unknown -> revoked -> used -> expired. "Used" has one exception:
  the same key asking again shortly after (the answer was lost on the way back to the appliance)
  is an idempotent retry, not a replay, and gets the same device identity again.
- Single use across several control-plane instances is the store's job: persist the accepted
  record with a compare-and-set (`UPDATE … SET used_at=… WHERE token_hash=… AND used_at IS
  NULL`), and if no row changed, re-read the record and ask `check_enrolment` again.
  `provisioning.redemption.claim_enrolment` wraps this decision together with the CSR checks.
- The typed fallback code carries no URL and no fingerprint: an appliance enrolling by code must
  take both from its image's settings.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Final, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic import ValidationError as PydanticValidationError

from provisioning.errors import (
    EnrolmentPayloadError,
    EnrolmentRefused,
    MalformedToken,
    TokenExpired,
    TokenRevoked,
    TokenUnknown,
    TokenUsed,
)
from provisioning.fallback_code import hash_fallback_code, new_fallback_code

SCHEMA: Final = "sf.enrolment"
VERSION: Final = 1
QR_SCHEME = "sfenrol"
DEFAULT_TTL = timedelta(hours=24)
RETRY_WINDOW = timedelta(hours=1)
TOKEN_PREFIX = "sfe_"  # noqa: S105 - a public prefix, not a secret
TOKEN_BYTES = 24  # 192 bits
_TOKEN = re.compile(r"sfe_[A-Za-z0-9_-]{32}")
_TOKEN_HASH_DOMAIN = b"sf.enrolment.token\x00"
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_QR_KEYS = {"u": "control_plane_url", "t": "token", "f": "ca_fingerprint", "tn": "tenant_id",
            "s": "store_id"}  # fmt: skip


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        msg = "control_plane_url needs a host"
        raise ValueError(msg)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS):
        msg = "control_plane_url must be https:// (plain http only for localhost)"
        raise ValueError(msg)
    return url


Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Token = Annotated[str, StringConstraints(pattern=r"^sfe_[A-Za-z0-9_-]{32}$")]
Fingerprint = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ControlPlaneUrl = Annotated[str, StringConstraints(max_length=200), AfterValidator(_check_url)]


class EnrolmentPayload(BaseModel):
    """What the enrolment QR code tells an appliance: where to go, what to show, whom to trust."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True)

    schema_: Literal["sf.enrolment"] = Field(default="sf.enrolment", alias="schema")
    v: Literal[1] = 1
    control_plane_url: ControlPlaneUrl
    token: Token
    ca_fingerprint: Fingerprint
    tenant_id: Identifier
    store_id: Identifier

    @field_validator("v", mode="before")
    @classmethod
    def _version_is_an_integer(cls, value: object) -> object:
        # True == 1 in Python, and pydantic's Literal check accepts it even in strict mode.
        if isinstance(value, bool):
            msg = "v must be the integer 1"
            raise ValueError(msg)
        return value


def encode_qr(payload: EnrolmentPayload) -> str:
    """The compact URI the QR code holds; `parse_qr` reads it back."""
    fields = {key: getattr(payload, name) for key, name in _QR_KEYS.items()}
    return f"{QR_SCHEME}:{payload.v}?{urlencode(fields)}"


def parse_qr(text: str) -> EnrolmentPayload:
    """Read a scanned enrolment URI; raise EnrolmentPayloadError saying what is wrong."""
    scheme, colon, rest = text.strip().partition(":")
    if not colon or scheme.lower() != QR_SCHEME:
        msg = "this QR code is not a storefleet enrolment"
        raise EnrolmentPayloadError(msg, text=text)
    version, _, query = rest.partition("?")
    if version != str(VERSION):
        msg = (
            f"enrolment version {version!r} is not understood by this appliance (it reads "
            f"version {VERSION}); update the appliance software or print a new code"
        )
        raise EnrolmentPayloadError(msg, text=text)
    try:
        fields = parse_qs(query, strict_parsing=True, max_num_fields=4 * len(_QR_KEYS))
    except ValueError as err:
        msg = "the enrolment QR code is damaged or incomplete"
        raise EnrolmentPayloadError(msg, text=text) from err
    unknown = sorted(set(fields) - set(_QR_KEYS))
    missing = sorted(set(_QR_KEYS) - set(fields))
    repeated = sorted(key for key, values in fields.items() if len(values) > 1)
    if unknown or missing or repeated:
        msg = (
            f"the enrolment QR code has fields unknown={unknown} missing={missing} "
            f"repeated={repeated}"
        )
        raise EnrolmentPayloadError(msg, text=text)
    try:
        return EnrolmentPayload.model_validate(
            {name: fields[key][0] for key, name in _QR_KEYS.items()}
        )
    except PydanticValidationError as err:
        bad = ", ".join(str(error["loc"][0]) for error in err.errors())
        msg = f"the enrolment QR code has invalid {bad}"
        raise EnrolmentPayloadError(msg, text=text) from err


def new_token() -> str:
    """A fresh enrolment token: 192 random bits, URL-safe, with a prefix secret scanners know."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """sha256 hex of a well-formed token (the only form stored); raise MalformedToken otherwise.

    A plain hash is enough because the token is 192 random bits: there is nothing to guess.
    """
    if not _TOKEN.fullmatch(token):
        msg = "the token is not of the form sfe_ followed by 32 URL-safe characters"
        raise MalformedToken(msg)
    return hashlib.sha256(_TOKEN_HASH_DOMAIN + token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class EnrolmentRecord:
    """An enrolment as the control plane stores it: hashes and lifecycle times, no secrets."""

    token_hash: str
    fallback_code_hash: str
    tenant_id: str
    store_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    used_at: datetime | None = None
    used_by_key: str | None = None  # sha256 of the SubjectPublicKeyInfo that redeemed it
    device_id: str | None = None  # assigned on first redemption, handed out again on a retry


@dataclass(frozen=True, slots=True)
class NewEnrolment:
    """The result of creating an enrolment: show `payload` and `fallback_code`, store `record`."""

    payload: EnrolmentPayload
    fallback_code: str
    record: EnrolmentRecord


@dataclass(frozen=True, slots=True)
class Accepted:
    """Redeeming may go on; persist `record` (compare-and-set on `used_at IS NULL` if first)."""

    record: EnrolmentRecord
    retry: bool  # the same key asked again: return the identity issued the first time


def _require_aware(now: datetime) -> None:
    # Stored times are aware; comparing with a naive one would raise deep inside, or worse,
    # silently shift expiry by the server's UTC offset if someone "fixed" it with replace().
    if now.tzinfo is None or now.utcoffset() is None:
        msg = "now must be timezone-aware, e.g. datetime.now(UTC)"
        raise ValueError(msg)


def new_enrolment(
    *,
    tenant_id: str,
    store_id: str,
    control_plane_url: str,
    ca_fingerprint: str,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> NewEnrolment:
    """Create a single-use enrolment for a store, valid for `ttl` from `now` (timezone-aware)."""
    _require_aware(now)
    token = new_token()
    fallback_code = new_fallback_code()
    payload = EnrolmentPayload(
        control_plane_url=control_plane_url,
        token=token,
        ca_fingerprint=ca_fingerprint,
        tenant_id=tenant_id,
        store_id=store_id,
    )
    record = EnrolmentRecord(
        token_hash=hash_token(token),
        fallback_code_hash=hash_fallback_code(fallback_code),
        tenant_id=tenant_id,
        store_id=store_id,
        created_at=now,
        expires_at=now + ttl,
    )
    return NewEnrolment(payload=payload, fallback_code=fallback_code, record=record)


def check_enrolment(
    record: EnrolmentRecord | None,
    *,
    key_sha256: str,
    now: datetime,
    retry_window: timedelta = RETRY_WINDOW,
) -> Accepted | EnrolmentRefused:
    """Decide whether the key `key_sha256` may redeem `record` at `now`.

    Returns the refusal instead of raising it, so the caller can log and count it before it
    turns it into an HTTP answer (`raise decision` where an exception is wanted).
    """
    _require_aware(now)
    if record is None:
        return TokenUnknown("no enrolment matches this code")
    if record.revoked_at is not None and record.revoked_at <= now:
        return TokenRevoked(f"revoked at {record.revoked_at.isoformat()}")
    if record.used_at is not None:
        if record.used_by_key == key_sha256 and now < record.used_at + retry_window:
            return Accepted(record=record, retry=True)
        return TokenUsed(f"used at {record.used_at.isoformat()}")
    if now >= record.expires_at:
        return TokenExpired(f"expired at {record.expires_at.isoformat()}")
    return Accepted(record=replace(record, used_at=now, used_by_key=key_sha256), retry=False)
