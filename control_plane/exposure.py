"""What the control plane answers to whom before any route runs: known Host names only, and
/metrics to the monitoring networks only.

How it works: :class:`TrustedHosts` is Starlette's ``TrustedHostMiddleware`` with the names of
``ControlPlaneSettings.trusted_hosts`` — a page on another site that rebinds its own name to
this address (DNS rebinding) sends that name as ``Host`` and gets 400, before any cookie or
route is looked at. The names are read when Starlette builds its middleware stack, at the first
event the app receives (the lifespan's startup), so the host of the CA's public URL, which
``serve`` and the tests put on ``app.state`` after ``create_app``, is among them.

:func:`metrics_app` serves Prometheus' exposition only to the networks of
``STOREFLEET_CP_METRICS_FROM`` (loopback by default): it carries no secret, but fleet size, error
rates and tenant-free counters are nobody else's business, and Prometheus scrapes without a
login. Behind a trusted proxy the client address is the forwarded one (uvicorn's proxy headers).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from http import HTTPStatus

from prometheus_client import make_asgi_app
from starlette.datastructures import State
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from control_plane.problems import REFUSALS, ProblemResponse, problem
from control_plane.settings import ControlPlaneSettings

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedHosts(TrustedHostMiddleware):
    """Refuse (400) a request whose ``Host`` is not one of the control plane's names."""

    def __init__(self, app: ASGIApp, *, settings: ControlPlaneSettings, state: State) -> None:
        provisioning = getattr(state, "provisioning_settings", None)
        public_url = provisioning.public_url if provisioning is not None else None
        hosts = settings.trusted_hosts(public_url=public_url)
        log.info("answering Host %s", ", ".join(hosts))
        super().__init__(app, allowed_hosts=hosts, www_redirect=False)


def _allowed(client: tuple[str, int] | None, networks: Sequence[Network]) -> bool:
    if client is None:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    return any(address in network for network in networks)


def metrics_app(networks: Sequence[Network]) -> ASGIApp:
    """Prometheus' exposition for ``networks``; 403 (a problem, counted, one log line) otherwise."""
    exposition = make_asgi_app()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _allowed(scope.get("client"), networks):
            who = scope["client"][0] if scope.get("client") else "unknown"
            body = problem(
                HTTPStatus.FORBIDDEN,
                reason="metrics_refused",
                detail=f"/metrics is not served to {who}",
                advice="scrape from a network in STOREFLEET_CP_METRICS_FROM, or add yours to it",
            )
            REFUSALS.labels(str(body.status), body.reason).inc()
            log.info("GET /metrics refused 403 to %s; %s", who, body.advice)
            await ProblemResponse(body, status_code=body.status)(scope, receive, send)
            return
        await exposition(scope, receive, send)

    return app
