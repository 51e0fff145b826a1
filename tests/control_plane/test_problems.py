"""The one error-to-HTTP mapping: a domain error's headers and its detail reach the answer.

Regression (issue 9): only Starlette's HTTPException had its headers copied, so a domain error
had to inherit from it too for Retry-After or WWW-Authenticate to reach the client.
"""

from __future__ import annotations

from types import MappingProxyType

import httpx
import pytest
from fastapi import FastAPI

from control_plane.catalog.errors import VersionAhead
from control_plane.devices.errors import DeviceDecommissioned, DeviceNotFound
from control_plane.operators.errors import (
    CsrfRefused,
    LockedOut,
    RateLimited,
    TotpRequired,
    Unauthenticated,
)
from control_plane.problems import DomainError, install_problem_handlers


class BusyError(DomainError):
    """A plain domain error, no Starlette base, that asks the client to wait."""

    status = 503
    reason = "busy"

    def __init__(self) -> None:
        super().__init__("busy")
        self.headers = MappingProxyType({"Retry-After": "7"})


def _app(error: Exception) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/refuse")
    async def refuse() -> None:
        raise error

    return app


@pytest.mark.parametrize(
    ("error", "header", "value"),
    [
        pytest.param(BusyError(), "Retry-After", "7", id="plain-domain-error"),
        pytest.param(
            Unauthenticated(), "WWW-Authenticate", 'Bearer realm="storefleet"', id="unauthenticated"
        ),
        pytest.param(RateLimited(2.2, 100), "Retry-After", "3", id="rate-limited"),
        pytest.param(LockedOut(60), "Retry-After", "60", id="locked-out"),
    ],
)
async def test_a_domain_errors_headers_reach_the_answer(
    error: DomainError, header: str, value: str
) -> None:
    transport = httpx.ASGITransport(app=_app(error))
    async with httpx.AsyncClient(transport=transport, base_url="http://cp") as client:
        answer = await client.get("/refuse")
    assert answer.status_code == error.status
    assert answer.headers[header] == value
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["reason"] == error.reason


def test_operators_errors_are_domain_errors_only() -> None:
    """No Starlette HTTPException in their tree: the problem handler is their only mapping."""
    from starlette.exceptions import HTTPException

    for error in (Unauthenticated, RateLimited, LockedOut):
        assert not issubclass(error, HTTPException)


async def test_a_refusal_that_declares_only_data_answers_with_its_filled_in_detail() -> None:
    """A ``@dataclass`` domain error: its fields are its context, ``message`` its detail."""
    error = DeviceDecommissioned("acme-01-r9")
    transport = httpx.ASGITransport(app=_app(error))
    async with httpx.AsyncClient(transport=transport, base_url="http://cp") as client:
        answer = await client.get("/refuse")
    assert (answer.status_code, error.device_id) == (410, "acme-01-r9")
    assert answer.json() == {
        "type": "urn:storefleet:problem:device_decommissioned",
        "title": "Device decommissioned",
        "status": 410,
        "detail": "device 'acme-01-r9' was decommissioned; "
        "enrol the appliance again with a new enrolment code",
        "reason": "device_decommissioned",
        "advice": "enrol the appliance again with a new enrolment code",
        "errors": [],
    }


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        pytest.param(DeviceNotFound("r1"), "device 'r1' does not exist", id="positional"),
        pytest.param(
            VersionAhead(since=5, version=3),
            "catalog is at version 3, not 5; fetch the snapshot",
            id="keyword-only",
        ),
        pytest.param(CsrfRefused(), "missing or wrong CSRF token", id="no-fields"),
        pytest.param(
            TotpRequired(), "a TOTP code is required for this account", id="under-a-plain-base"
        ),
    ],
)
def test_a_data_only_refusal_reads_as_its_message(error: DomainError, detail: str) -> None:
    assert (str(error), error.args) == (detail, (detail,))
