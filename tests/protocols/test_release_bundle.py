"""Release bundles: a good one verifies; any change to its manifest, signature or wheels is refused.

The tar is built by :func:`protocols.release_bundle.write_bundle` and read back through
:func:`read_bundle`, the same two functions the CLI and the agent use.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import release_bundle as rb

SIGNER = Ed25519PrivateKey.generate()
ROTATED = Ed25519PrivateKey.generate()
STRANGER = Ed25519PrivateKey.generate()
WHEELS = {
    "wheels/storefleet-2.0.0-py3-none-any.whl": bytes(range(256)) * 40,
    "wheels/extra-1.0-py3-none-any.whl": b"extra wheel bytes" * 30,
}


def manifest(**changes: object) -> rb.Manifest:
    files = [
        rb.BundleFile(path=p, size=len(b), sha256=hashlib.sha256(b).hexdigest())
        for p, b in WHEELS.items()
    ]
    fields: dict[str, object] = {
        "version": "2.0.0",
        "min_agent_version": "0.1.0",
        "created_at": "2026-12-06T22:00:00Z",
        "files": files,
    } | changes
    return rb.Manifest.model_validate(fields)


def tar(members: list[tuple[str, bytes]]) -> bytes:
    """A tar of exactly these members, in this order (to build bundles the writer never would)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def parts(key: Ed25519PrivateKey = SIGNER) -> list[tuple[str, bytes]]:
    m = manifest()
    manifest_bytes = m.to_bytes()
    return [
        (rb.MANIFEST_NAME, manifest_bytes),
        (rb.SIGNATURE_NAME, rb.sign_manifest(manifest_bytes, key).to_bytes()),
        *WHEELS.items(),
    ]


def written(key: Ed25519PrivateKey = SIGNER) -> bytes:
    out = io.BytesIO()
    m = manifest()
    rb.write_bundle(
        out,
        manifest=m,
        signature=rb.sign_manifest(m.to_bytes(), key),
        open_file=lambda entry: io.BytesIO(WHEELS[entry.path]),
    )
    return out.getvalue()


TRUSTED = rb.TrustedKeys([SIGNER.public_key(), ROTATED.public_key()])


def refusal(data: bytes, trusted: rb.TrustedKeys = TRUSTED) -> str:
    with pytest.raises(rb.BundleRefused) as refused:
        rb.read_bundle(io.BytesIO(data), trusted)
    return refused.value.reason


def test_a_good_bundle_verifies_and_streams_every_wheel_to_the_sink() -> None:
    sinks: dict[str, io.BytesIO] = {}

    def sink(entry: rb.BundleFile) -> io.BytesIO:
        sinks[entry.path] = io.BytesIO()
        return sinks[entry.path]

    verified = rb.read_bundle(io.BytesIO(written()), TRUSTED, sink=sink)

    assert verified.manifest.version == "2.0.0"
    assert verified.signature.key_id == rb.key_id(SIGNER.public_key())
    assert {path: s.getvalue() for path, s in sinks.items()} == WHEELS


def test_either_of_two_trusted_keys_verifies_so_keys_can_rotate() -> None:
    assert rb.read_bundle(io.BytesIO(written(ROTATED)), TRUSTED).manifest.version == "2.0.0"


def test_key_id_is_the_first_16_hex_of_sha256_of_the_raw_public_key() -> None:
    raw = rb.raw_public_key(SIGNER.public_key())

    assert rb.key_id(SIGNER.public_key()) == hashlib.sha256(raw).hexdigest()[:16]
    assert rb.load_public_key(rb.public_key_text(SIGNER.public_key())).public_bytes_raw() == raw


def test_manifest_bytes_are_canonical_json_of_the_contract() -> None:
    assert manifest().to_bytes().startswith(b'{"app":"storefleet-appliance","created_at":')


_PARTS = parts()
_OFFSETS = [(index, offset) for index, (_, d) in enumerate(_PARTS) for offset in range(len(d))]


@settings(max_examples=300, deadline=None)
@given(where=st.sampled_from(_OFFSETS), flip=st.integers(min_value=1, max_value=255))
def test_any_changed_byte_of_manifest_signature_or_wheel_is_refused(
    where: tuple[int, int], flip: int
) -> None:
    index, offset = where
    members = list(_PARTS)
    name, data = members[index]
    changed = bytearray(data)
    changed[offset] ^= flip
    members[index] = (name, bytes(changed))

    assert refusal(tar(members)) in {
        "malformed",
        "bad_signature",
        "unknown_key",
        "sha256_mismatch",
    }


#: Where the last member's data ends; after it come only end-of-archive blocks and padding.
_MEMBERS_END = sum(512 + -(-len(d) // 512) * 512 for _, d in _PARTS)


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(min_value=0, max_value=_MEMBERS_END - 1))
def test_a_bundle_cut_anywhere_before_its_last_byte_is_refused(cut: int) -> None:
    # a cut in the end-of-archive blocks leaves every file whole: the agent catches that one by
    # the whole file's size and sha256, which the release names; a cut on a member's boundary
    # leaves the next file missing
    assert refusal(tar(_PARTS)[:cut]) in {"truncated", "malformed", "missing_file"}


def _swap(index: int, member: tuple[str, bytes]) -> Callable[[], list[tuple[str, bytes]]]:
    def make() -> list[tuple[str, bytes]]:
        members = list(_PARTS)
        members[index] = member
        return members

    return make


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        pytest.param(
            lambda: [*_PARTS, ("wheels/evil-1-py3-none-any.whl", b"x")],
            "unlisted_file",
            id="unlisted",
        ),
        pytest.param(lambda: [*_PARTS, _PARTS[2]], "duplicate_file", id="duplicate"),
        pytest.param(lambda: _PARTS[:3], "missing_file", id="missing"),
        pytest.param(lambda: [_PARTS[1], _PARTS[0], *_PARTS[2:]], "malformed", id="out-of-order"),
        pytest.param(_swap(2, ("wheels/../../etc/passwd", b"x")), "unsafe_path", id="dot-dot"),
        pytest.param(_swap(2, ("/etc/passwd", b"x")), "unsafe_path", id="absolute"),
        pytest.param(
            _swap(2, (_PARTS[2][0], _PARTS[2][1] + b"tail")), "size_mismatch", id="longer-wheel"
        ),
        pytest.param(
            lambda: [(rb.MANIFEST_NAME, b" " * (rb.MAX_MANIFEST_BYTES + 1)), *_PARTS[1:]],
            "manifest_too_large",
            id="huge-manifest",
        ),
    ],
)
def test_bundle_shapes_outside_the_format_are_refused_by_name(
    members: Callable[[], list[tuple[str, bytes]]], reason: str
) -> None:
    assert refusal(tar(members())) == reason


def test_a_symbolic_link_member_is_refused() -> None:
    head = sum(512 + -(-len(d) // 512) * 512 for _, d in _PARTS[:2])
    link = tarfile.TarInfo(_PARTS[2][0])
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    data = tar(_PARTS[:2])[:head] + link.tobuf(format=tarfile.USTAR_FORMAT) + b"\0" * 1024

    assert refusal(data) == "unsafe_path"


def test_a_key_outside_the_trusted_set_is_refused_as_unknown() -> None:
    assert refusal(written(STRANGER)) == "unknown_key"


def test_no_trusted_key_at_all_refuses_every_bundle() -> None:
    assert refusal(written(), rb.TrustedKeys([])) == "unknown_key"


def test_a_signature_by_a_trusted_key_over_other_bytes_is_bad() -> None:
    members = list(_PARTS)
    other = manifest(version="2.0.1").to_bytes()
    members[1] = (rb.SIGNATURE_NAME, rb.sign_manifest(other, SIGNER).to_bytes())

    assert refusal(tar(members)) == "bad_signature"


def test_a_signed_manifest_that_is_not_canonical_is_refused() -> None:
    loose = manifest().to_bytes().replace(b'","', b'", "', 1)
    members = [
        (rb.MANIFEST_NAME, loose),
        (rb.SIGNATURE_NAME, rb.sign_manifest(loose, SIGNER).to_bytes()),
        *_PARTS[2:],
    ]

    assert refusal(tar(members)) == "malformed"


@pytest.mark.parametrize(
    ("agent", "refused"),
    [("0.1.0", False), ("0.2", False), ("0.0.9", True), ("0.1.0rc1", True)],
)
def test_agent_version_below_the_minimum_is_refused(agent: str, refused: bool) -> None:
    if refused:
        with pytest.raises(rb.BundleRefused, match="agent_too_old"):
            rb.check_agent_version(manifest(), agent)
    else:
        rb.check_agent_version(manifest(), agent)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"version": "not a version"}, id="version"),
        pytest.param({"created_at": "2026-12-06 22:00"}, id="created_at"),
        pytest.param({"files": []}, id="no-files"),
    ],
)
def test_a_manifest_outside_the_contract_cannot_be_made(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        manifest(**changes)


def test_progress_body_is_the_event_body_of_the_contract() -> None:
    body = rb.progress_body(
        rollout=None, version="2.0.0", state=rb.ReleaseState.REVERTED, detail="x" * 5000
    )

    assert body["state"] == "reverted"
    assert body["rollout"] is None
    assert len(body["detail"]) == 1000
