"""``storefleet release``: make the signed bundle of the appliance app (keygen, build, verify)
and hand it to the control plane (publish).

How it works: ``keygen`` writes an Ed25519 signing key (PEM, mode 0600) and prints the public
key and its ``key_id`` — the public key goes into every agent's ``trusted_release_keys``.
``build`` makes the app's wheel with ``pip wheel --no-deps`` (the bundle carries the app; the
appliance image provides its pinned dependencies, so a slot is a venv over the image's packages
with only the app installed, ``--no-index --no-deps``), writes the manifest (every file's size
and sha256), signs it and writes ``storefleet-app-<version>.sfb`` in the bundle format
(:mod:`protocols.release_bundle`), renamed into place only when whole. ``verify`` checks a
bundle against one or more public keys exactly as an agent would, and names the refusal.
``publish`` uploads a bundle to the control plane (``POST /api/releases`` with a platform
admin's API token), which verifies it again against its own trusted keys before keeping it.

This module needs only the shared packages (``protocols``, ``cryptography``), so it runs on a
build machine with either side installed, or neither.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import release_bundle as rb

app = typer.Typer(
    name="release",
    help="Signed release bundles of the appliance app: keygen, build, verify.",
    no_args_is_help=True,
)

#: The wheel file name's version part (PEP 427): ``<name>-<version>-<tags>.whl``.
_WHEEL_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[^-]+)-")
APP_DISTRIBUTION = "storefleet"


class ReleaseBuildError(Exception):
    """The bundle cannot be built; the message says what to do."""


@dataclass(frozen=True)
class BuiltBundle:
    """What ``build`` made: where, how big, its digest and signature (what a release names)."""

    path: Path
    size: int
    sha256: str
    manifest: rb.Manifest
    signature: rb.ManifestSignature


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(rb.CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_signing_key(path: Path, *, overwrite: bool = False) -> Ed25519PrivateKey:
    """A new Ed25519 key in ``path`` (PEM, 0600 from the first byte); refuses to overwrite."""
    key = Ed25519PrivateKey.generate()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as err:
        raise ReleaseBuildError(
            f"{path} exists: keep it (it signs releases agents trust) or pass --force"
        ) from err
    with os.fdopen(fd, "wb") as out:
        out.write(rb.private_key_pem(key))
    os.chmod(path, 0o600)
    return key


def read_signing_key(path: Path) -> Ed25519PrivateKey:
    """The signing key; refuses one others can read, or a file that is not an Ed25519 key."""
    try:
        mode = path.stat().st_mode & 0o777
        pem = path.read_bytes()
    except OSError as err:
        raise ReleaseBuildError(
            f"{path}: cannot read the signing key ({err.strerror}); make one with"
            " `storefleet release keygen`"
        ) from err
    if mode & 0o077:
        raise ReleaseBuildError(f"{path} is readable by others (mode {mode:o}): chmod 600 it")
    try:
        return rb.load_private_key(pem)
    except ValueError as err:
        raise ReleaseBuildError(f"{path}: not an Ed25519 private key in PEM ({err})") from err


def build_app_wheel(project: Path, out_dir: Path, *, build_isolation: bool = True) -> Path:
    """``pip wheel --no-deps`` of the project: the app's own wheel, nothing else."""
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out_dir)]
    if not build_isolation:
        argv.append("--no-build-isolation")
    done = subprocess.run([*argv, str(project)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ReleaseBuildError(
            f"pip wheel failed for {project} (exit {done.returncode}): {done.stderr.strip()[-800:]}"
        )
    wheels = sorted(out_dir.glob("*.whl"))
    if len(wheels) != 1:
        raise ReleaseBuildError(f"pip wheel made {len(wheels)} wheels in {out_dir}, expected 1")
    return wheels[0]


def wheel_version(wheel: Path) -> str | None:
    """The version in a wheel's file name, or None when it is not a wheel's name."""
    match = _WHEEL_NAME.match(wheel.name)
    return match["version"] if match else None


def build_bundle(
    *,
    wheels: Sequence[Path],
    key: Ed25519PrivateKey,
    out_dir: Path,
    version: str | None = None,
    min_agent_version: str = "0",
    created_at: datetime | None = None,
) -> BuiltBundle:
    """Manifest, signature and tar of ``wheels``; written whole or not at all."""
    if not wheels:
        raise ReleaseBuildError("no wheel to bundle")
    if version is None:
        apps = [w for w in wheels if w.name.startswith(f"{APP_DISTRIBUTION}-")]
        version = wheel_version(apps[0]) if apps else None
        if version is None:
            raise ReleaseBuildError("no storefleet wheel to take the version from: pass --version")
    files = [
        rb.BundleFile(path=f"{rb.WHEELS_DIR}{w.name}", size=w.stat().st_size, sha256=file_sha256(w))
        for w in wheels
    ]
    when = (created_at or datetime.now(UTC)).astimezone(UTC)
    try:
        manifest = rb.Manifest(
            version=version,
            min_agent_version=min_agent_version,
            created_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            files=files,
        )
    except ValueError as err:
        raise ReleaseBuildError(f"the manifest cannot be made: {err}") from err
    signature = rb.sign_manifest(manifest.to_bytes(), key)
    by_path = {f"{rb.WHEELS_DIR}{w.name}": w for w in wheels}

    def open_file(entry: rb.BundleFile) -> IO[bytes]:
        return by_path[entry.path].open("rb")

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / manifest.file_name
    with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".building-", delete=False) as out:
        try:
            rb.write_bundle(
                out,
                manifest=manifest,
                signature=signature,
                open_file=open_file,
                mtime=int(when.timestamp()),
            )
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            Path(out.name).unlink(missing_ok=True)
            raise
    Path(out.name).replace(target)
    return BuiltBundle(
        path=target,
        size=target.stat().st_size,
        sha256=file_sha256(target),
        manifest=manifest,
        signature=signature,
    )


def verify_bundle_file(path: Path, trusted: rb.TrustedKeys) -> rb.VerifiedBundle:
    """Verify a bundle file as an agent does (signature, every file), writing nothing."""
    with path.open("rb") as stream:
        return rb.read_bundle(stream, trusted)


# -- the commands ----------------------------------------------------------------------------------


def _fail(message: str) -> typer.Exit:
    typer.echo(f"storefleet release: {message}", err=True)
    return typer.Exit(1)


@app.command()
def keygen(
    out: Annotated[Path, typer.Option(help="where the signing key is written (PEM, 0600)")],
    force: Annotated[bool, typer.Option(help="replace an existing key file")] = False,
) -> None:
    """Make a release signing key; print the public key agents must trust, and its key_id."""
    try:
        key = write_signing_key(out, overwrite=force)
    except ReleaseBuildError as err:
        raise _fail(str(err)) from err
    public = key.public_key()
    typer.echo(f"signing key: {out}")
    typer.echo(f"public key: {rb.public_key_text(public)}")
    typer.echo(f"key_id: {rb.key_id(public)}")


@app.command()
def build(
    key: Annotated[Path, typer.Option(help="the signing key file (from keygen)")],
    out: Annotated[Path, typer.Option(help="directory the .sfb is written to")] = Path("dist"),
    project: Annotated[Path, typer.Option(help="the project to build the app wheel of")] = Path(),
    wheel: Annotated[
        list[Path] | None, typer.Option(help="bundle this wheel instead of building (repeatable)")
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="the release's version; default: the storefleet wheel's")
    ] = None,
    min_agent_version: Annotated[
        str, typer.Option(help="the oldest agent that may install it (PEP 440)")
    ] = "0",
    build_isolation: Annotated[
        bool, typer.Option(help="pip's build isolation (off: offline, build deps installed)")
    ] = True,
) -> None:
    """Build, sign and write storefleet-app-<version>.sfb."""
    try:
        signing_key = read_signing_key(key)
        with tempfile.TemporaryDirectory(prefix="sf-release-") as scratch:
            wheels = list(wheel or [])
            if not wheels:
                wheels = [build_app_wheel(project, Path(scratch), build_isolation=build_isolation)]
            missing = [w for w in wheels if not w.is_file()]
            if missing:
                raise ReleaseBuildError(f"no such wheel: {', '.join(map(str, missing))}")
            built = build_bundle(
                wheels=wheels,
                key=signing_key,
                out_dir=out,
                version=version,
                min_agent_version=min_agent_version,
            )
    except ReleaseBuildError as err:
        raise _fail(str(err)) from err
    typer.echo(f"bundle: {built.path}")
    typer.echo(f"version: {built.manifest.version}")
    typer.echo(f"size: {built.size}")
    typer.echo(f"sha256: {built.sha256}")
    typer.echo(f"key_id: {built.signature.key_id}")
    typer.echo(f"signature: {built.signature.signature}")


@app.command()
def verify(
    bundle: Annotated[Path, typer.Argument(help="the .sfb file")],
    public_key: Annotated[
        list[str], typer.Option(help="a trusted public key (base64url or PEM file); repeatable")
    ],
) -> None:
    """Check a bundle as an agent would; print its manifest, or the reason it is refused."""
    texts = [Path(k).read_text() if Path(k).is_file() else k for k in public_key]
    try:
        trusted = rb.TrustedKeys.from_texts(texts)
    except ValueError as err:
        raise _fail(f"--public-key: {err}") from err
    try:
        verified = verify_bundle_file(bundle, trusted)
    except OSError as err:
        raise _fail(f"{bundle}: cannot read it ({err.strerror})") from err
    except rb.BundleRefused as err:
        raise _fail(f"REFUSED {err.reason}: {err.detail}") from err
    manifest = verified.manifest
    typer.echo(
        f"ok: {bundle.name} version {manifest.version}, signed by {verified.signature.key_id}"
    )
    typer.echo(f"min_agent_version: {manifest.min_agent_version}")
    for entry in manifest.files:
        typer.echo(f"  {entry.path} {entry.size} {entry.sha256}")


@app.command()
def publish(
    bundle: Annotated[Path, typer.Argument(help="the .sfb file")],
    url: Annotated[
        str, typer.Option(envvar="STOREFLEET_URL", help="the control plane's URL (https://…)")
    ],
    token: Annotated[
        str,
        typer.Option(
            envvar="STOREFLEET_TOKEN",
            help="a platform admin's API token (sft_…)",
            show_default=False,
        ),
    ],
    ca_file: Annotated[
        Path | None, typer.Option(help="the CA bundle that signed the control plane's certificate")
    ] = None,
) -> None:
    """Upload a bundle; the control plane verifies it against its trusted keys and keeps it."""
    import httpx  # only publish talks to the network: imported when it runs

    try:
        with bundle.open("rb") as content:
            answer = httpx.post(
                f"{url.rstrip('/')}/api/releases",
                content=content,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/octet-stream",
                },
                verify=str(ca_file) if ca_file else True,
                timeout=httpx.Timeout(30.0, write=600.0),
            )
    except OSError as err:
        raise _fail(f"{bundle}: cannot read it ({err.strerror})") from err
    except httpx.HTTPError as err:
        raise _fail(f"{url} cannot be reached ({err}); check --url and the network") from err
    if answer.status_code not in (200, 201):
        try:
            problem = answer.json()
            said = f"{problem.get('detail', '')} {problem.get('advice', '')}".strip()
        except ValueError:
            said = answer.text[:200]
        raise _fail(f"REFUSED {answer.status_code}: {said}")
    release = answer.json()
    state = "published" if answer.status_code == 201 else "already published (same bytes)"
    typer.echo(f"{state}: {release['version']} sha256 {release['sha256']} key {release['key_id']}")
