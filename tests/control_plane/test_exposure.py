"""The control plane beyond loopback: the Host names it answers (DNS rebinding), HTTPS served by
uvicorn itself, a reverse proxy's forwarded headers believed only from trusted addresses, and
/metrics only to the monitoring networks.

Regression (issue 9): a foreign ``Host`` was answered like any other, so a page on another site
that rebinds its name to a browser's local control plane could drive it.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from control_plane.devices import service as registry
from control_plane.operators import service as operators
from control_plane.operators.gatekeeper import wall_clock_ms
from control_plane.operators.passwords import Passwords
from control_plane.operators.principal import Role
from control_plane.operators.tables import audit_log
from control_plane.provisioning.settings import ProvisioningSettings
from control_plane.settings import ControlPlaneSettings
from tests.harness.control_plane import ServedControlPlane, operator_settings, served_control_plane
from tests.harness.services import Mosquitto

# -- settings: what is answered, how uvicorn serves -------------------------------------------


@pytest.mark.parametrize(
    ("fields", "public_url", "hosts"),
    [
        pytest.param({}, None, ["127.0.0.1", "[::1]", "localhost"], id="loopback"),
        pytest.param({"host": "0.0.0.0"}, None, ["127.0.0.1", "[::1]", "localhost"], id="any"),
        pytest.param(
            {"host": "10.0.0.5"}, None, ["10.0.0.5", "127.0.0.1", "[::1]", "localhost"], id="bound"
        ),
        pytest.param(
            {"host": "0.0.0.0"},
            "https://fleet.example.com/",
            ["127.0.0.1", "[::1]", "fleet.example.com", "localhost"],
            id="public-url",
        ),
        pytest.param(
            {"allowed_hosts": "Fleet.Example.com, *.fleet.example.com,::1"},
            None,
            ["*.fleet.example.com", "[::1]", "fleet.example.com"],
            id="configured",
        ),
    ],
)
def test_the_host_names_answered(
    fields: dict[str, str], public_url: str | None, hosts: list[str]
) -> None:
    assert ControlPlaneSettings(**fields).trusted_hosts(public_url=public_url) == hosts


def test_any_interface_is_allowed_now_and_plain_http_beyond_loopback_is_flagged() -> None:
    exposed = ControlPlaneSettings(host="0.0.0.0")
    proxied = ControlPlaneSettings(host="0.0.0.0", trusted_proxies="10.0.0.0/8, 192.0.2.7")

    assert exposed.plain_http_exposed
    assert not ControlPlaneSettings().plain_http_exposed
    assert not proxied.plain_http_exposed
    assert proxied.uvicorn_options() | {"ssl_certfile": None} == {
        "host": "0.0.0.0",
        "port": 8080,
        "ssl_certfile": None,
        "ssl_keyfile": None,
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.0/8", "192.0.2.7/32"],
    }
    assert exposed.uvicorn_options()["proxy_headers"] is False  # a client cannot claim an address


# -- served --------------------------------------------------------------------------------------

OPERATOR = "ops@acme.example"


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the test trusts it as its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "control plane test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


async def _operator(served: ServedControlPlane) -> dict[str, str]:
    """An operator of tenant acme: the login body."""
    engine = served.app.state.engine
    await registry.create_tenant(engine, tenant_id="acme", name="Acme")
    _, password = await operators.create_operator(
        engine,
        passwords=Passwords(operator_settings()),
        by=None,
        email=OPERATOR,
        role=Role.OPERATOR,
        tenant_id="acme",
        now=wall_clock_ms(),
    )
    return {"email": OPERATOR, "password": password}


async def _login_clients(served: ServedControlPlane) -> list[str | None]:
    """The client address the audit log recorded for each login, oldest first."""
    query = select(audit_log.c.client).where(audit_log.c.action == "auth:login")
    async with served.app.state.engine.connect() as conn:
        return [row.client for row in await conn.execute(query.order_by(audit_log.c.id))]


@pytest.mark.services
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("host", "status"),
    [
        pytest.param("rebound.example", 400, id="foreign-name"),
        pytest.param("rebound.example:8080", 400, id="foreign-name-with-port"),
        pytest.param("127.0.0.1.rebound.example", 400, id="loopback-lookalike"),
        pytest.param("fleet.example.com", 200, id="the-ca-public-url-host"),
        pytest.param("localhost:9", 200, id="localhost"),
        pytest.param("[::1]:1234", 200, id="ipv6-loopback"),
    ],
)
async def test_only_the_control_planes_own_names_are_answered(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path, host: str, status: int
) -> None:
    provisioning = ProvisioningSettings(
        demo=True, directory=tmp_path / "ca", public_url="https://fleet.example.com/"
    )
    async with (
        served_control_plane(
            database_url=database_url, broker_url=mosquitto.url, provisioning=provisioning
        ) as served,
        served.client() as api,
    ):
        answer = await api.get("/api/auth/me", headers={"Host": host})

    assert answer.status_code == status, answer.text


@pytest.mark.services
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_https_served_by_uvicorn_itself_with_secure_cookies(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    cert, key = _certificate(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    async with served_control_plane(
        database_url=database_url, broker_url=mosquitto.url, tls_cert=cert, tls_key=key
    ) as served:
        body = await _operator(served)
        async with served.anonymous(verify=trust) as client:
            login = await client.post("/api/auth/login", json=body)
            me = await client.get("/api/auth/me")
        async with served.anonymous() as client:
            with pytest.raises(httpx.RemoteProtocolError):  # no plain HTTP on the TLS port
                await client.get(served.url.replace("https://", "http://") + "/healthz")

    assert served.url.startswith("https://127.0.0.1:")
    assert login.status_code == 200, login.text
    assert "secure" in login.headers["set-cookie"].lower()
    assert me.json()["email"] == OPERATOR


@pytest.mark.services
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("proxies", "client", "secure"),
    [
        pytest.param("127.0.0.1", "203.0.113.7", True, id="trusted-proxy"),
        pytest.param("", "127.0.0.1", False, id="no-proxy-configured"),
        pytest.param("192.0.2.0/24", "127.0.0.1", False, id="not-the-trusted-proxy"),
    ],
)
async def test_forwarded_headers_are_believed_from_trusted_proxies_only(
    database_url: str, mosquitto: Mosquitto, proxies: str, client: str, secure: bool
) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    async with served_control_plane(
        database_url=database_url, broker_url=mosquitto.url, trusted_proxies=proxies
    ) as served:
        body = await _operator(served)
        async with served.anonymous() as proxy:  # the proxy, on loopback, forwarding a client
            login = await proxy.post("/api/auth/login", json=body, headers=forwarded)
        clients = await _login_clients(served)

    assert login.status_code == 200, login.text
    assert clients == [client]  # the audit log names whoever the control plane believes
    assert ("secure" in login.headers["set-cookie"].lower()) is secure


@pytest.mark.services
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("settings", "forwarded_for", "status"),
    [
        pytest.param({}, None, 200, id="loopback-by-default"),
        pytest.param({"metrics_from": "10.0.0.0/8"}, None, 403, id="loopback-not-listed"),
        pytest.param(
            {"metrics_from": "10.0.0.0/8", "trusted_proxies": "127.0.0.1"},
            "10.1.2.3",
            200,
            id="listed-network-behind-proxy",
        ),
    ],
)
async def test_metrics_only_to_the_monitoring_networks(
    database_url: str,
    mosquitto: Mosquitto,
    settings: dict[str, str],
    forwarded_for: str | None,
    status: int,
) -> None:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    async with (
        served_control_plane(
            database_url=database_url, broker_url=mosquitto.url, **settings
        ) as served,
        served.anonymous() as scraper,
    ):
        answer = await scraper.get("/metrics/", headers=headers)

    assert answer.status_code == status, answer.text[:300]
    assert ("storefleet_" in answer.text) is (status == 200)
