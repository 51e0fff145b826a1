"""Mosquitto configuration for the fleet's mutual-TLS listener, rendered from images/mosquitto.

The template and the ACL live in `images/mosquitto/` so the broker image ships the same files the
tests run against. `write_broker_directory` lays out everything one broker needs from a CA: trust
bundle, its own key and certificate, the CRL, the ACL and the rendered config.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from provisioning.ca import CertificateAuthority
from provisioning.errors import BrokerConfigError
from provisioning.keys import (
    PRIVATE_FILE_MODE,
    PUBLIC_FILE_MODE,
    build_csr,
    generate_private_key,
    private_key_pem,
    write_atomic,
)

IMAGE_DIRECTORY = Path(__file__).resolve().parents[1] / "images" / "mosquitto"
TEMPLATE_PATH = IMAGE_DIRECTORY / "mosquitto-mtls.conf.template"
ACL_PATH = IMAGE_DIRECTORY / "acl"


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """Paths of one broker's files, as referenced by its config."""

    config: Path
    acl: Path
    cafile: Path
    certfile: Path
    keyfile: Path
    crlfile: Path


def _config_value(value: str, what: str) -> str:
    # Mosquitto reads one option per line and splits on spaces: a newline would inject options.
    if not value or any(ch.isspace() for ch in value):
        msg = f"{what} {value!r} must be non-empty and contain no whitespace for mosquitto.conf"
        raise BrokerConfigError(msg)
    return value


def render_mosquitto_config(
    template: str,
    *,
    files: BrokerFiles,
    port: int = 8883,
    bind_address: str = "0.0.0.0",
    data_directory: Path | None = None,
    run_as_user: str | None = None,
) -> str:
    """Fill the mTLS listener template; `data_directory=None` turns persistence off (tests).

    `run_as_user` matters when mosquitto starts as root: it then switches to that user, who must
    be able to read the key and the CRL (tests pass "root" to keep their temp files private).
    """
    if not 0 < port < 65536:
        msg = f"port {port} is not a TCP port"
        raise BrokerConfigError(msg)
    persistence = "persistence false"
    if data_directory is not None:
        location = _config_value(f"{data_directory}/", "data directory")
        persistence = f"persistence true\npersistence_location {location}"
    run_as = f"user {_config_value(run_as_user, 'user')}" if run_as_user else ""
    try:
        return string.Template(template).substitute(
            acl_file=_config_value(str(files.acl), "acl file"),
            persistence=persistence,
            run_as=run_as,
            port=port,
            bind_address=_config_value(bind_address, "bind address"),
            cafile=_config_value(str(files.cafile), "cafile"),
            certfile=_config_value(str(files.certfile), "certfile"),
            keyfile=_config_value(str(files.keyfile), "keyfile"),
            crlfile=_config_value(str(files.crlfile), "crlfile"),
        )
    except (KeyError, ValueError) as err:
        msg = f"the mosquitto template has a placeholder this renderer does not know: {err}"
        raise BrokerConfigError(msg) from err


def write_broker_directory(
    directory: Path,
    *,
    ca: CertificateAuthority,
    hostnames: Sequence[str],
    port: int = 8883,
    bind_address: str = "0.0.0.0",
    data_directory: Path | None = None,
    run_as_user: str | None = None,
    template: str | None = None,
    acl: str | None = None,
    now: datetime | None = None,
) -> BrokerFiles:
    """Issue the broker's certificate and write its config, ACL, trust bundle and CRL."""
    directory = directory.resolve()  # mosquitto resolves relative paths from its own cwd
    directory.mkdir(parents=True, exist_ok=True)
    files = BrokerFiles(
        config=directory / "mosquitto.conf",
        acl=directory / "acl",
        cafile=directory / "ca-bundle.crt.pem",
        certfile=directory / "broker.crt.pem",
        keyfile=directory / "broker.key.pem",
        crlfile=directory / "crl.pem",
    )
    key = generate_private_key()
    issued = ca.issue_broker_certificate(
        build_csr(key, common_name="broker"), hostnames=hostnames, now=now
    )
    # The broker key stays unencrypted: mosquitto cannot prompt for a passphrase at boot.
    write_atomic(files.keyfile, private_key_pem(key, passphrase=None), mode=PRIVATE_FILE_MODE)
    presented = issued.certificate_pem + issued.issuing_certificate.public_bytes(
        serialization.Encoding.PEM
    )
    write_atomic(files.certfile, presented, mode=PUBLIC_FILE_MODE)
    write_atomic(files.cafile, ca.trust_bundle_pem, mode=PUBLIC_FILE_MODE)
    ca.write_crl(files.crlfile, now=now)
    acl_text = acl if acl is not None else ACL_PATH.read_text()
    write_atomic(files.acl, acl_text.encode(), mode=PUBLIC_FILE_MODE)
    config = render_mosquitto_config(
        template if template is not None else TEMPLATE_PATH.read_text(),
        files=files,
        port=port,
        bind_address=bind_address,
        data_directory=data_directory,
        run_as_user=run_as_user,
    )
    write_atomic(files.config, config.encode(), mode=PUBLIC_FILE_MODE)
    return files
