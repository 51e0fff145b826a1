"""Broker addresses as one URL setting: ``mqtt://host:1883`` or ``mqtts://host:8883``.

One string is what an operator can put in an environment variable; both deployables parse it
here so they agree on defaults (1883 plain, 8883 TLS) and on what is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class BrokerUrlError(ValueError):
    """The broker URL cannot be used; the message says what to set."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and whether to speak TLS."""

    host: str
    port: int
    tls: bool

    @property
    def url(self) -> str:
        """The address back as a URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``url`` or raise :class:`BrokerUrlError` naming the problem."""
    try:
        parts = urlsplit(url)
    except ValueError as err:
        raise BrokerUrlError(f"broker URL {url!r} is malformed (check the host): {err}") from err
    try:
        port = parts.port
    except ValueError as err:
        raise BrokerUrlError(f"broker URL {url!r} has a bad port: {err}") from err
    if parts.scheme not in DEFAULT_PORTS:
        raise BrokerUrlError(f"broker URL {url!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise BrokerUrlError(f"broker URL {url!r} names no host")
    if port == 0:
        raise BrokerUrlError(f"broker URL {url!r} has a bad port: 0; give the broker's real one")
    return BrokerAddress(
        host=parts.hostname,
        port=port if port is not None else DEFAULT_PORTS[parts.scheme],
        tls=parts.scheme == "mqtts",
    )
