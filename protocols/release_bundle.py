"""The release bundle: a signed manifest of the appliance app's wheels, in one tar (sans-I/O).

How it works (the contract is ``briefs/bundle_format.md``; both the cloud and the agent use this
module so neither can drift): a bundle is ONE uncompressed POSIX (ustar) tar file
``storefleet-app-<version>.sfb`` holding, in this order,

    manifest.json   canonical JSON of :class:`Manifest` (version, min agent version, every file's
                    size and sha256), at most :data:`MAX_MANIFEST_BYTES`
    manifest.sig    canonical JSON of :class:`ManifestSignature`: the signing key's ``key_id``
                    and the Ed25519 signature over the exact bytes of ``manifest.json``
    wheels/*.whl    the files the manifest lists, and nothing else

A verifier holds a *set* of trusted public keys (:class:`TrustedKeys`, several at once so keys
can rotate) looked up by ``key_id`` = the first 16 hex characters of sha256 of the raw 32-byte
public key. :func:`read_bundle` checks the order, the signature *before* it trusts a byte of the
manifest, then every member's path, size and sha256 while streaming it (optionally into a sink the
caller provides, so the agent extracts as it verifies and deletes on refusal). Anything else is a
:class:`BundleRefused` whose ``reason`` is one of :data:`REASONS`.

The module touches no file system or network: it reads and writes binary streams handed to it.
The progress words a device reports (:class:`ReleaseState`, :func:`progress_body`) live here too,
because the cloud reads exactly what the agent writes.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Annotated, Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from protocols.canonical import canonical_bytes
from protocols.errors import NonCanonicalValue
from protocols.limits import LABEL_LENGTH, Count, Text, clip

SCHEMA: Final = "sf.bundle"
APP: Final = "storefleet-appliance"
MANIFEST_NAME: Final = "manifest.json"
SIGNATURE_NAME: Final = "manifest.sig"
WHEELS_DIR: Final = "wheels/"
SUFFIX: Final = ".sfb"
MAX_MANIFEST_BYTES: Final = 1024 * 1024
#: ``manifest.sig`` is ~130 bytes; anything much larger is not one.
MAX_SIGNATURE_BYTES: Final = 4096
#: The most files a manifest may list (the app and a few of its own wheels, never a whole venv).
MAX_FILES: Final = 256
#: Bytes hashed per read while streaming a member.
CHUNK: Final = 1024 * 1024

KEY_ID_PATTERN: Final = r"^[0-9a-f]{16}$"
#: Only ``wheels/<file>.whl``: no directories, no ``..``, nothing absolute, nothing hidden.
FILE_PATH_PATTERN: Final = r"^wheels/[A-Za-z0-9][A-Za-z0-9._+-]{0,88}\.whl$"
RFC3339_UTC: Final = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
_B64URL: Final = re.compile(r"^[A-Za-z0-9_-]+$")

#: Every :attr:`BundleRefused.reason` and what it means (the cloud shows these words).
REASONS: Final[Mapping[str, str]] = {
    "malformed": "the bundle, its manifest or its signature file is not in the bundle format",
    "manifest_too_large": f"manifest.json is over {MAX_MANIFEST_BYTES} bytes",
    "unknown_key": "the manifest is signed with a key this verifier does not trust",
    "bad_signature": "the signature does not verify over manifest.json with the named key",
    "unsafe_path": "a member is a link, a directory, absolute, or has '..' in its path",
    "unlisted_file": "the tar holds a file the manifest does not list",
    "duplicate_file": "the tar holds the same path twice",
    "missing_file": "a file the manifest lists is not in the tar",
    "size_mismatch": "a file's size differs from the manifest's",
    "sha256_mismatch": "a file's sha256 differs from the manifest's",
    "truncated": "the bundle ends before its last file does (an interrupted download)",
    "bundle_sha256_mismatch": "the whole bundle's sha256 is not the one the release names",
    "signature_mismatch": "the bundle's signature is not the one the release names",
    "version_mismatch": "the bundle's version is not the one the release names",
    "agent_too_old": "the bundle needs a newer agent than this appliance runs",
}


class BundleRefused(Exception):  # noqa: N818 - named for what the operator is told
    """A bundle that must not be installed; ``reason`` is a key of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown bundle refusal {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# -- the manifest and its signature ----------------------------------------------------------------


def _pep440(value: str) -> str:
    try:
        Version(value)
    except InvalidVersion as err:
        raise ValueError(f"{value!r} is not a PEP 440 version") from err
    return value


class BundleFile(BaseModel):
    """One file of the bundle as the manifest lists it."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    path: Annotated[str, Field(pattern=FILE_PATH_PATTERN)]
    size: Count
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Manifest(BaseModel):
    """What a bundle holds: the release's version and every file's size and digest."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)

    schema_: Literal["sf.bundle"] = Field(SCHEMA, alias="schema")
    v: Literal[1] = 1
    app: Literal["storefleet-appliance"] = APP
    version: Annotated[str, Field(min_length=1, max_length=LABEL_LENGTH)]
    min_agent_version: Annotated[str, Field(min_length=1, max_length=LABEL_LENGTH)]
    created_at: Annotated[str, Field(pattern=RFC3339_UTC)]
    files: Annotated[list[BundleFile], Field(min_length=1, max_length=MAX_FILES)]

    @field_validator("version", "min_agent_version")
    @classmethod
    def _versions(cls, value: str) -> str:
        return _pep440(value)

    @field_validator("files")
    @classmethod
    def _unique(cls, files: list[BundleFile]) -> list[BundleFile]:
        paths = [f.path for f in files]
        if len(set(paths)) != len(paths):
            raise ValueError("a path is listed twice")
        return files

    def to_bytes(self) -> bytes:
        """``manifest.json``: the canonical JSON that is signed."""
        return canonical_bytes(self.model_dump(by_alias=True, mode="json"))

    @property
    def file_name(self) -> str:
        """``storefleet-app-<version>.sfb``."""
        return bundle_file_name(self.version)


class ManifestSignature(BaseModel):
    """``manifest.sig``: who signed and the signature (base64url, no padding)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    key_id: Annotated[str, Field(pattern=KEY_ID_PATTERN)]
    signature: Annotated[str, Field(min_length=86, max_length=86, pattern=r"^[A-Za-z0-9_-]+$")]

    def to_bytes(self) -> bytes:
        """``manifest.sig`` as it is stored in the tar."""
        return canonical_bytes(self.model_dump(mode="json"))


def bundle_file_name(version: str) -> str:
    """The bundle's file name for ``version``."""
    return f"storefleet-app-{version}{SUFFIX}"


# -- keys ------------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    if not _B64URL.fullmatch(text):  # the decoder would skip stray characters silently
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error) as err:
        raise ValueError("not base64url") from err


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The raw 32 bytes of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """The first 16 hex characters of sha256 of the raw public key."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()[:16]


def public_key_text(key: Ed25519PublicKey) -> str:
    """The public key as settings and the CLI write it: base64url of the raw 32 bytes."""
    return _b64url(raw_public_key(key))


def load_public_key(text: str) -> Ed25519PublicKey:
    """A public key from :func:`public_key_text`'s form or a PEM ``PUBLIC KEY``; or ValueError."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM public key is not an Ed25519 key")
        return key
    raw = _unb64url(text)
    if len(raw) != 32:  # Ed25519 keys are 32 bytes
        raise ValueError(f"an Ed25519 public key is 32 bytes, this one {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """The signing key file's content: unencrypted PKCS#8 PEM (the file itself is 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """The signing key from its PEM; ValueError when it is not an Ed25519 private key."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the signing key is not an Ed25519 private key")
    return key


class TrustedKeys:
    """The set of public keys a verifier accepts, by ``key_id`` (several at once: rotation)."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._by_id = {key_id(k): k for k in keys}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> TrustedKeys:
        """From settings' text forms; ValueError naming the first that is not a key."""
        keys = []
        for index, text in enumerate(texts):
            try:
                keys.append(load_public_key(text))
            except ValueError as err:
                raise ValueError(f"trusted key {index + 1}: {err}") from err
        return cls(keys)

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def key_ids(self) -> list[str]:
        """The ids of the trusted keys, sorted."""
        return sorted(self._by_id)

    def get(self, key_identifier: str) -> Ed25519PublicKey | None:
        """The key with that id, or None."""
        return self._by_id.get(key_identifier)


# -- signing and verifying the manifest ------------------------------------------------------------


def sign_manifest(manifest_bytes: bytes, private_key: Ed25519PrivateKey) -> ManifestSignature:
    """The ``manifest.sig`` for these exact ``manifest.json`` bytes."""
    return ManifestSignature(
        key_id=key_id(private_key.public_key()),
        signature=_b64url(private_key.sign(manifest_bytes)),
    )


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError) as err:
        raise BundleRefused("malformed", f"{what} is not JSON") from err
    if not isinstance(value, dict):
        raise BundleRefused("malformed", f"{what} is not a JSON object")
    try:
        canonical = canonical_bytes(value)
    except NonCanonicalValue as err:
        raise BundleRefused("malformed", f"{what}: {err.reason}") from err
    if canonical != data:
        raise BundleRefused("malformed", f"{what} is not canonical JSON")
    return value


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "document"
    return clip(f"{where}: {first['msg']}", 300)


def parse_signature(sig_bytes: bytes) -> ManifestSignature:
    """``manifest.sig`` parsed, or ``malformed``."""
    if len(sig_bytes) > MAX_SIGNATURE_BYTES:
        raise BundleRefused("malformed", f"manifest.sig is over {MAX_SIGNATURE_BYTES} bytes")
    try:
        return ManifestSignature.model_validate(_json_object(sig_bytes, SIGNATURE_NAME))
    except ValidationError as err:
        raise BundleRefused("malformed", f"manifest.sig {_first_error(err)}") from err


def verify_manifest(
    manifest_bytes: bytes, sig_bytes: bytes, trusted: TrustedKeys
) -> tuple[Manifest, ManifestSignature]:
    """The manifest, once its signature verifies with a trusted key; else :class:`BundleRefused`.

    The signature is checked over the exact bytes before they are parsed: nothing an untrusted
    party wrote reaches the JSON parser beyond the small signature file.
    """
    if len(manifest_bytes) > MAX_MANIFEST_BYTES:
        raise BundleRefused(
            "manifest_too_large", f"{len(manifest_bytes)} bytes, at most {MAX_MANIFEST_BYTES}"
        )
    signature = parse_signature(sig_bytes)
    public_key = trusted.get(signature.key_id)
    if public_key is None:
        raise BundleRefused(
            "unknown_key",
            f"signed with key {signature.key_id}; trusted: {', '.join(trusted.key_ids) or 'none'}",
        )
    try:
        public_key.verify(_unb64url(signature.signature), manifest_bytes)
    except (InvalidSignature, ValueError) as err:
        raise BundleRefused(
            "bad_signature", f"manifest.json does not verify with key {signature.key_id}"
        ) from err
    try:
        manifest = Manifest.model_validate(_json_object(manifest_bytes, MANIFEST_NAME))
    except ValidationError as err:
        raise BundleRefused("malformed", f"manifest.json {_first_error(err)}") from err
    return manifest, signature


def check_agent_version(manifest: Manifest, agent_version: str) -> None:
    """Refuse (``agent_too_old``) a bundle needing a newer agent than ``agent_version``."""
    if Version(agent_version) < Version(manifest.min_agent_version):
        raise BundleRefused(
            "agent_too_old",
            f"release {manifest.version} needs agent {manifest.min_agent_version} or newer,"
            f" this appliance runs {agent_version}",
        )


# -- the tar ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature and every file checked out."""

    manifest: Manifest
    signature: ManifestSignature
    manifest_bytes: bytes


#: Where :func:`read_bundle` writes each verified-as-it-streams file (None: only verify).
FileSink = Callable[[BundleFile], IO[bytes] | None]


def _member_path(member: tarfile.TarInfo) -> str:
    name = member.name
    if not (member.isreg() and member.type in (tarfile.REGTYPE, tarfile.AREGTYPE)):
        raise BundleRefused("unsafe_path", f"{name!r} is not a regular file")
    if name.startswith("/") or ".." in name.split("/") or "\\" in name or "\x00" in name:
        raise BundleRefused("unsafe_path", f"{name!r} is absolute or climbs out")
    return name


def _read_small(archive: tarfile.TarFile, expected: str, limit: int, reason: str) -> bytes:
    member = archive.next()
    if member is None:
        raise BundleRefused("truncated", f"the bundle ends before {expected}")
    name = _member_path(member)
    if name != expected:
        raise BundleRefused("malformed", f"{expected} must come next, found {name!r}")
    if member.size > limit:
        raise BundleRefused(reason, f"{expected} is {member.size} bytes, at most {limit}")
    stream = archive.extractfile(member)
    data = stream.read() if stream is not None else b""
    if len(data) != member.size:
        raise BundleRefused("truncated", f"{expected} ends early")
    return data


def _stream_member(
    archive: tarfile.TarFile, member: tarfile.TarInfo, listed: BundleFile, out: IO[bytes] | None
) -> None:
    if member.size != listed.size:
        raise BundleRefused(
            "size_mismatch", f"{listed.path}: {member.size} bytes, manifest says {listed.size}"
        )
    stream = archive.extractfile(member)
    if stream is None:  # pragma: no cover - a regular file always has a stream
        raise BundleRefused("unsafe_path", f"{listed.path} has no content")
    digest = hashlib.sha256()
    seen = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        seen += len(chunk)
        if out is not None:
            out.write(chunk)
    if seen != listed.size:
        raise BundleRefused("truncated", f"{listed.path} ends after {seen} of {listed.size} bytes")
    if digest.hexdigest() != listed.sha256:
        raise BundleRefused("sha256_mismatch", f"{listed.path}: sha256 {digest.hexdigest()}")


def read_bundle(
    stream: IO[bytes], trusted: TrustedKeys, *, sink: FileSink | None = None
) -> VerifiedBundle:
    """Verify a whole bundle read from ``stream``; each file goes to ``sink`` as it is hashed.

    A refusal may come after ``sink`` got some files: the caller discards what it wrote.
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            manifest_bytes = _read_small(
                archive, MANIFEST_NAME, MAX_MANIFEST_BYTES, "manifest_too_large"
            )
            sig_bytes = _read_small(archive, SIGNATURE_NAME, MAX_SIGNATURE_BYTES, "malformed")
            manifest, signature = verify_manifest(manifest_bytes, sig_bytes, trusted)
            listed = {f.path: f for f in manifest.files}
            seen: set[str] = set()
            while (member := archive.next()) is not None:  # iter() would start over
                name = _member_path(member)
                if name in seen:
                    raise BundleRefused("duplicate_file", f"{name} appears twice")
                entry = listed.get(name)
                if entry is None:
                    raise BundleRefused("unlisted_file", f"{name} is not in the manifest")
                seen.add(name)
                _stream_member(archive, member, entry, sink(entry) if sink else None)
    except tarfile.ReadError as err:
        # a tar that stops ("unexpected end of data", "truncated header") is a cut download;
        # anything else (a bad header checksum) is not a bundle at all
        said = str(err)
        ends_early = any(word in said for word in ("end of data", "truncated", "empty"))
        reason = "truncated" if ends_early else "malformed"
        raise BundleRefused(reason, f"not a whole tar: {err}") from err
    missing = sorted(set(listed) - seen)
    if missing:
        raise BundleRefused("missing_file", f"{', '.join(missing)} not in the bundle")
    return VerifiedBundle(manifest=manifest, signature=signature, manifest_bytes=manifest_bytes)


def _add(archive: tarfile.TarFile, name: str, size: int, content: IO[bytes], mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = mtime
    info.uname = info.gname = ""
    archive.addfile(info, content)


def write_bundle(
    out: IO[bytes],
    *,
    manifest: Manifest,
    signature: ManifestSignature,
    open_file: Callable[[BundleFile], IO[bytes]],
    mtime: int = 0,
) -> None:
    """Write the tar: manifest.json, manifest.sig, then each listed file from ``open_file``."""
    manifest_bytes = manifest.to_bytes()
    sig_bytes = signature.to_bytes()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as archive:
        _add(archive, MANIFEST_NAME, len(manifest_bytes), io.BytesIO(manifest_bytes), mtime)
        _add(archive, SIGNATURE_NAME, len(sig_bytes), io.BytesIO(sig_bytes), mtime)
        for entry in manifest.files:
            with open_file(entry) as content:
                _add(archive, entry.path, entry.size, content, mtime)


# -- what a device reports ----------------------------------------------------------------------


class ReleaseState(enum.StrEnum):
    """A device's progress through one release (``release.progress`` events' ``state``)."""

    NOTIFIED = "notified"
    WAITING_FOR_WINDOW = "waiting_for_window"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    INSTALLING = "installing"
    CONFIRMING = "confirming"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REVERTED = "reverted"
    TIMED_OUT = "timed_out"


#: The states that end a release on the device (a revert is a failure, never a success).
FINAL_STATES: Final = frozenset(
    {ReleaseState.SUCCEEDED, ReleaseState.FAILED, ReleaseState.REVERTED, ReleaseState.TIMED_OUT}
)


class ReleaseProgress(BaseModel):
    """The body of a ``release.progress`` event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rollout: Annotated[str, Field(min_length=1, max_length=64)] | None
    version: Annotated[str, Field(min_length=1, max_length=LABEL_LENGTH)]
    state: ReleaseState
    detail: Text = ""


def progress_body(
    *, rollout: str | None, version: str, state: ReleaseState, detail: str = ""
) -> dict[str, Any]:
    """A ``release.progress`` event's body as the wire carries it."""
    return ReleaseProgress(
        rollout=rollout, version=version, state=state, detail=clip(detail)
    ).model_dump(mode="json")
