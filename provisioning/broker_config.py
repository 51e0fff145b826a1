"""Mosquitto configuration for the fleet's mutual-TLS listener, rendered from images/mosquitto.

The template lives in `images/mosquitto/` so the broker image ships the same file the tests run
against. `write_broker_directory` lays out everything one broker needs from a CA: trust bundle,
its own key and certificate, the CRL, the rendered config and the dynamic-security plugin's
first document (`provisioning.dynamic_security`: the control plane, no device, deny the rest).
"""

from __future__ import annotations

import json
import string
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from provisioning.ca import CertificateAuthority
from provisioning.dynamic_security import initial_document
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
SERVICE_TEMPLATE_PATH = IMAGE_DIRECTORY / "mosquitto-mtls-service.conf.template"
DYNSEC_FILE = "dynamic-security.json"
_PLUGIN = "mosquitto_dynamic_security.so"


def dynamic_security_plugin() -> Path:
    """Where this machine's Mosquitto 2.0 keeps the plugin (Debian: /usr/lib/<multiarch>/).

    When none is installed here, the Debian path for this architecture: the config may be
    rendered for another host, and mosquitto itself refuses to start without the plugin.
    """
    multiarch = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    candidates = [Path("/usr/lib") / multiarch / _PLUGIN, Path("/usr/lib") / _PLUGIN]
    candidates.append(Path("/usr/local/lib") / _PLUGIN)
    return next((path for path in candidates if path.exists()), candidates[0])


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """Paths of one broker's files, as referenced by its config."""

    config: Path
    dynamic_security: Path
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
    dynsec_plugin: Path | None = None,
    bind_client_id: bool = True,
    service_port: int | None = None,
    service_bind_address: str = "127.0.0.1",
) -> str:
    """Fill the mTLS listener template; `data_directory=None` turns persistence off (tests).

    `run_as_user` matters when mosquitto starts as root: it then switches to that user, who must
    be able to read the key and the CRL (tests pass "root" to keep their temp files private).

    `bind_client_id` (on, as shipped) makes the broker replace every client id with the
    certificate's CN (`use_username_as_clientid`), so no certificate can take over another's
    session: the one mechanism Mosquitto 2.0.11 has for certificate clients (the plugin's
    `clientid` is only checked with a password). One certificate then holds one session, so an
    appliance has two certificates for its one key (the register's `<id>`, the agent's
    `<id>.agent`), and the control plane, whose sessions all present CN `control-plane`,
    connects to the service listener (`service_port`, measured per listener on 2.0.11), where
    the client id is not bound. Appliances must never reach that listener: keep
    `service_bind_address` on loopback or the control plane's private network.
    """
    if not 0 < port < 65536:
        msg = f"port {port} is not a TCP port"
        raise BrokerConfigError(msg)
    if service_port is not None and not (0 < service_port < 65536 and service_port != port):
        msg = f"service port {service_port} is not a TCP port other than the listener's {port}"
        raise BrokerConfigError(msg)
    persistence = "persistence false"
    if data_directory is not None:
        location = _config_value(f"{data_directory}/", "data directory")
        persistence = f"persistence true\npersistence_location {location}"
    run_as = f"user {_config_value(run_as_user, 'user')}" if run_as_user else ""
    plugin = dynsec_plugin if dynsec_plugin is not None else dynamic_security_plugin()
    service = ""
    if service_port is not None:
        service = _fill(
            SERVICE_TEMPLATE_PATH.read_text(),
            files=files,
            service_port=service_port,
            service_bind_address=_config_value(service_bind_address, "service bind address"),
        )
    return _fill(
        template,
        files=files,
        dynsec_plugin=_config_value(str(plugin), "dynamic-security plugin"),
        dynsec_file=_config_value(str(files.dynamic_security), "dynamic-security file"),
        client_id_binding="use_username_as_clientid true" if bind_client_id else "",
        service_listener=service,
        persistence=persistence,
        run_as=run_as,
        port=port,
        bind_address=_config_value(bind_address, "bind address"),
    )


def _fill(template: str, *, files: BrokerFiles, **values: object) -> str:
    try:
        return string.Template(template).substitute(
            values,
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
    dynsec_plugin: Path | None = None,
    bind_client_id: bool = True,
    service_port: int | None = None,
    service_bind_address: str = "127.0.0.1",
    now: datetime | None = None,
) -> BrokerFiles:
    """Issue the broker's certificate; write its config, trust bundle, CRL and access list.

    The access list (`dynamic-security.json`) goes to the data directory when there is one (the
    broker rewrites it on every change and must keep it across restarts), else next to the
    config. It is written only if absent: once the broker runs, the file is the broker's, and
    rewriting it here would drop every device the control plane added.
    """
    directory = directory.resolve()  # mosquitto resolves relative paths from its own cwd
    directory.mkdir(parents=True, exist_ok=True)
    state_directory = (data_directory or directory).resolve()
    files = BrokerFiles(
        config=directory / "mosquitto.conf",
        dynamic_security=state_directory / DYNSEC_FILE,
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
    if not files.dynamic_security.exists():
        state_directory.mkdir(parents=True, exist_ok=True)
        document = json.dumps(initial_document(), indent=2).encode()
        # No secret inside (everyone authenticates by certificate): readable like the config.
        write_atomic(files.dynamic_security, document, mode=PUBLIC_FILE_MODE)
    config = render_mosquitto_config(
        template if template is not None else TEMPLATE_PATH.read_text(),
        files=files,
        port=port,
        bind_address=bind_address,
        data_directory=data_directory,
        run_as_user=run_as_user,
        dynsec_plugin=dynsec_plugin,
        bind_client_id=bind_client_id,
        service_port=service_port,
        service_bind_address=service_bind_address,
    )
    write_atomic(files.config, config.encode(), mode=PUBLIC_FILE_MODE)
    return files
