"""Guessing typed codes is slowed down: unknown codes per address are limited in a window; and
redemption as a whole spends the client's API budget, so a flood of tokens is answered 429.
Either 429 says when to come back (Retry-After)."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.operators.gatekeeper import Gatekeeper
from control_plane.provisioning.attempts import CodeAttempts, TooManyAttempts
from provisioning.device_keys import DeviceIdentity
from provisioning.enrolment import parse_qr
from provisioning.fallback_code import new_fallback_code
from tests.control_plane.provisioning.fleet_harness import Fleet
from tests.harness.control_plane import operator_settings


def test_failures_beyond_the_limit_are_refused_until_the_window_passes() -> None:
    attempts = CodeAttempts(limit=2, window=600)
    for moment in (0.0, 1.0):
        attempts.check("10.0.0.7", now=moment)
        attempts.failed("10.0.0.7", now=moment)

    with pytest.raises(TooManyAttempts) as refused:
        attempts.check("10.0.0.7", now=2.0)
    assert refused.value.headers["Retry-After"] == "598"  # the failure at 0 leaves at 600
    attempts.check("10.0.0.8", now=2.0)  # another address has its own budget
    attempts.check("10.0.0.7", now=601.0)  # the first failure left the window


@pytest.mark.services
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_api_answers_429_after_ten_unknown_codes_but_the_qr_still_works(
    fleet: Fleet, tmp_path: Path
) -> None:
    created = await fleet.create_enrolment()
    csr = DeviceIdentity(tmp_path / "appliance").certificate_request().decode()
    guesses = [
        await fleet.api.post(
            "/api/enrol", json={"fallback_code": new_fallback_code(), "csr_pem": csr}
        )
        for _ in range(10)
    ]

    blocked = await fleet.api.post(
        "/api/enrol", json={"fallback_code": created["fallback_code"], "csr_pem": csr}
    )
    scanned = await fleet.api.post(
        "/api/enrol", json={"token": parse_qr(created["qr_text"]).token, "csr_pem": csr}
    )

    assert {guess.status_code for guess in guesses} == {404}
    assert blocked.status_code == 429
    assert blocked.json()["reason"] == "too_many_attempts"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 600
    assert scanned.status_code == 200


@pytest.mark.services
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_flood_of_redemptions_from_one_client_is_answered_429_with_retry_after(
    fleet: Fleet, tmp_path: Path
) -> None:
    fleet.app.state.operators = Gatekeeper(
        engine=fleet.engine, settings=operator_settings(api_rate_per_minute=5)
    )
    created = await fleet.create_enrolment()
    csr = DeviceIdentity(tmp_path / "appliance").certificate_request().decode()
    async with fleet.anonymous() as client:
        unknown = [
            await client.post("/api/enrol", json={"token": "sfe_" + "A" * 32, "csr_pem": csr})
            for _ in range(5)
        ]
        flooded = await client.post(
            "/api/enrol", json={"token": parse_qr(created["qr_text"]).token, "csr_pem": csr}
        )

    assert {answer.status_code for answer in unknown} == {404}
    assert (flooded.status_code, flooded.json()["reason"]) == (429, "rate_limited")
    assert 1 <= int(flooded.headers["Retry-After"]) <= 60
    enrolment = await fleet.enrolment(created["enrolment"]["id"])
    assert enrolment["state"] == "pending"  # the refused redemption used nothing up
