"""Trust benchmark: what authentication and authorisation add to an API request, and what a
login costs.

* Auth overhead: the operators domain on SQLite and PostgreSQL, in process. The figure is the
  time of the one dependency every guarded route runs (``policy.require``: session or token
  look-up, expiry, CSRF on a POST, rate-limit bucket, the policy table), called on a real
  Starlette request, p99 over many calls; and, beside it, the end-to-end difference between a
  guarded and an unguarded route through ASGI (alternated, so both see the same machine).
  Goal: p99 < 1 ms. ``--rounds`` rounds (default 5); the median of the rounds' p99 and their
  spread, reported through ``bench/rounds.py`` like every benchmark here.
* Login: argon2id at the configured (default) parameters, the time of one verification, and
  the logins per second one node sustains through ``POST /api/auth/login`` (password check,
  session, audit entry) with as many logins in flight as cores.
* Ingest with signed journal heads beside the same run without (goal ≥ 0.9×): measured by
  ``bench/signed_journal.py`` (its docstring says how), run here too so the issue's three
  figures sit in one table and one JSON; ``--no-ingest`` leaves it out.

    .venv/bin/python bench/trust.py [--quick] [--rounds N] [--no-ingest]

Writes ``bench/results/trust.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from starlette.requests import Request

from bench.rounds import Goal, Rounds, add_rounds_argument
from bench.signed_journal import measure as measure_signed_ingest
from control_plane.operators.passwords import Passwords
from control_plane.operators.policy import Action, require
from control_plane.operators.principal import Role
from control_plane.operators.settings import OperatorSettings
from tests.control_plane.operators.trust_harness import CHEAP, Trust, trust_on
from tests.harness.services import create_pg_database, drop_pg_database

UNLIMITED = {"api_rate_per_minute": 10**9, "login_rate_per_minute": 10**9}


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def _request(trust: Trust, method: str, headers: dict[str, str]) -> Request:
    scope = {
        "type": "http",
        "method": method,
        "path": "/probe",
        "raw_path": b"/probe",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "scheme": "http",
        "app": trust.app,
    }
    return Request(scope)


def _call(dependency: Any, request: Request) -> Callable[[], Awaitable[Any]]:
    """The guard up to the principal it yields (admission: what authentication and the policy
    cost), then closed: the change audit's entry, written when a route finishes, is the
    change's own cost, not authentication's."""

    async def admitted() -> Any:
        guard = dependency(request)
        try:
            return await guard.__anext__()
        finally:
            await guard.aclose()

    return admitted


async def _timed(call: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def auth_overhead(url: str, *, calls: int, rounds: int) -> dict[str, Any]:
    """p99 of the dependency alone, per credential kind; and end-to-end guarded - unguarded."""
    async with trust_on(url, **UNLIMITED) as trust:
        # the real clock: sessions and tokens age (and are touched) as they would in service
        trust.gatekeeper.now = lambda: time.time_ns() // 1_000_000
        trust.clock.ms = time.time_ns() // 1_000_000
        await trust.operator("ops@acme.example", Role.OPERATOR)
        login = await trust.login("ops@acme.example")
        _, secret = await trust.api_token("ops@acme.example", ["read", "catalog"])
        cookie = {"cookie": f"sf_session={login.client.cookies['sf_session']}"}
        kinds = {
            "session GET": ("GET", Action.DEVICES_READ, cookie),
            "session POST + CSRF": (
                "POST",
                Action.CATALOG_WRITE,
                cookie | {"x-csrf-token": login.csrf},
            ),
            "token GET": ("GET", Action.DEVICES_READ, {"authorization": f"Bearer {secret}"}),
        }
        figures: dict[str, Any] = {}
        for name, (method, action, headers) in kinds.items():
            call = _call(require(action).dependency, _request(trust, method, headers))
            await _timed(call, 200)  # warm caches and pools
            per_round = [p99(await _timed(call, calls)) for _ in range(rounds)]
            figures[name] = {
                "p99_ms_median": statistics.median(per_round),
                "p99_ms_min": min(per_round),
                "p99_ms_max": max(per_round),
                "p99_ms_rounds": per_round,
                "calls_per_round": calls,
                "rounds": rounds,
            }
        api = trust.client()
        bearer = {"Authorization": f"Bearer {secret}"}
        diffs_p50, diffs_p99 = [], []
        for _ in range(rounds):
            open_ms, guarded_ms = [], []
            for _ in range(calls // 2):
                open_ms += await _timed(lambda: api.get("/unguarded"), 1)
                guarded_ms += await _timed(
                    lambda: api.get("/probe/devices:read", headers=bearer), 1
                )
            diffs_p50.append(statistics.median(guarded_ms) - statistics.median(open_ms))
            diffs_p99.append(p99(guarded_ms) - p99(open_ms))
        figures["end-to-end token GET minus unguarded"] = {
            "p50_ms_median": statistics.median(diffs_p50),
            "p99_ms_median": statistics.median(diffs_p99),
            "p99_ms_min": min(diffs_p99),
            "p99_ms_max": max(diffs_p99),
            "p99_ms_rounds": diffs_p99,
        }
        figures |= await device_assertion_overhead(trust, calls=calls, rounds=rounds)
        return figures


async def device_assertion_overhead(
    trust: Trust, *, calls: int, rounds: int
) -> dict[str, dict[str, Any]]:
    """p99 of ``DeviceDep`` (control_plane/devices/device_auth.py) on a real request: parse the
    assertion, its certificate (cached), ES256 signature, claims, the registry query (device and
    certificates, kept 5 s), the replay memory. A device with a fleet-CA certificate; each call a
    fresh assertion, minted before the round (the device's cost, not the control plane's). Beside
    it, the p99 of the bare ES256 verification in the same rounds: the floor no verifier beats on
    this machine (on a loaded node the p99 of any ~0.1 ms call is the scheduler's)."""
    from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
    from cryptography.hazmat.primitives.hashes import SHA256

    from control_plane.devices import service as registry
    from control_plane.devices.device_auth import DeviceVerifier, authenticate_device
    from edge.enrolment.device_auth import DeviceAuth
    from provisioning.ca import CertificateAuthority
    from tests.control_plane.devices.device_harness import issued_identity

    with tempfile.TemporaryDirectory() as tmp:
        ca = CertificateAuthority.create(Path(tmp) / "ca", passphrase=b"bench passphrase")
        await registry.create_store(trust.engine, store_id="acme-b", tenant_id="acme", name="B")
        await registry.register_device(trust.engine, device_id="acme-b-r1", store_id="acme-b")
        await issued_identity(
            trust.engine, ca, device_id="acme-b-r1", identity_dir=Path(tmp) / "identity"
        )
        device = DeviceAuth(Path(tmp) / "identity")
        # as deployed, but no device or fleet limit on live assertions: the bench sends many
        trust.app.state.device_verifier = DeviceVerifier(
            engine=trust.engine, capacity=10**9, per_device=10**9
        )

        key = device.identity.ensure_key()
        public, signature = key.public_key(), key.sign(b"floor", ECDSA(SHA256()))

        async def timed_round(n: int) -> tuple[list[float], list[float]]:
            tokens = [device.assertion() for _ in range(n)]
            samples, floor = [], []
            for token in tokens:
                request = _request(trust, "GET", {"authorization": f"Bearer {token}"})
                start = time.perf_counter()
                await authenticate_device(request)
                samples.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                public.verify(signature, b"floor", ECDSA(SHA256()))
                floor.append((time.perf_counter() - start) * 1000)
            return samples, floor

        await timed_round(200)  # warm caches and pools
        measured = [await timed_round(calls) for _ in range(rounds)]

    def figure(series: list[list[float]]) -> dict[str, Any]:
        per_round = [p99(samples) for samples in series]
        return {
            "p99_ms_median": statistics.median(per_round),
            "p99_ms_min": min(per_round),
            "p99_ms_max": max(per_round),
            "p99_ms_rounds": per_round,
            "p50_ms_median": statistics.median(statistics.median(s) for s in series),
            "calls_per_round": calls,
            "rounds": rounds,
        }

    return {
        "device assertion (DeviceDep)": figure([samples for samples, _ in measured]),
        "bare ES256 verify, same rounds (floor)": figure([floor for _, floor in measured]),
    }


async def _logins(client: Any, body: dict[str, str], deadline: float) -> int:
    done = 0
    while time.perf_counter() < deadline:
        response = await client.post("/api/auth/login", json=body)
        assert response.status_code == 200, response.text
        done += 1
    return done


async def login_cost(
    url: str, *, verifications: int, seconds: float, rounds: int
) -> dict[str, Any]:
    """argon2id at the default parameters; logins/s through the API with cores in flight."""
    settings = OperatorSettings()
    passwords = Passwords(settings)
    stored = passwords.hash_blocking("correct horse battery staple")
    verify_ms = [
        (await _timed(lambda: passwords.verify(stored, "correct horse battery staple"), 1))[0]
        for _ in range(verifications)
    ]
    defaults = {k: getattr(settings, k) for k in CHEAP}
    concurrency = os.cpu_count() or 1
    rates = []
    async with trust_on(url, **UNLIMITED, **defaults) as trust:
        trust.gatekeeper.now = lambda: time.time_ns() // 1_000_000
        await trust.operator("ops@acme.example", Role.OPERATOR)
        body = {"email": "ops@acme.example", "password": trust.passwords["ops@acme.example"]}
        client = trust.client()
        for _ in range(rounds):
            start = time.perf_counter()
            counts = await asyncio.gather(
                *(_logins(client, body, start + seconds) for _ in range(concurrency))
            )
            rates.append(sum(counts) / (time.perf_counter() - start))
    return {
        "argon2": passwords.parameters | {"variant": "argon2id"},
        "verify_ms_median": statistics.median(verify_ms),
        "verify_ms_min": min(verify_ms),
        "verify_ms_max": max(verify_ms),
        # the verifications dealt into `rounds` groups, each group's median: a round's figure
        "verify_ms_rounds": [
            statistics.median(verify_ms[n::rounds]) for n in range(min(rounds, len(verify_ms)))
        ],
        "logins_per_s_median": statistics.median(rates),
        "logins_per_s_min": min(rates),
        "logins_per_s_max": max(rates),
        "logins_per_s_rounds": rates,
        "in_flight": concurrency,
        "rounds": rounds,
    }


async def main(quick: bool, rounds_of: Rounds, *, ingest: bool = True) -> None:
    results: dict[str, Any] = {}  # machine, times and load average: bench/rounds.py records them
    calls, rounds = (1000 if quick else 5000), rounds_of.rounds
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgresql"):
            for figure in ("auth", "login"):
                url = (
                    f"sqlite+aiosqlite:///{Path(tmp) / f'{figure}.db'}"
                    if backend == "sqlite"
                    else await create_pg_database()
                )
                print(f"{figure} on {backend}…", flush=True)
                try:
                    if figure == "auth":
                        results[f"auth_{backend}"] = await auth_overhead(
                            url, calls=calls, rounds=rounds
                        )
                    else:
                        results[f"login_{backend}"] = await login_cost(
                            url,
                            verifications=10 if quick else 30,
                            seconds=3 if quick else 10,
                            rounds=rounds,
                        )
                finally:
                    if backend == "postgresql":
                        await drop_pg_database(url)
    if ingest:
        print("ingest, signed heads beside unsigned…", flush=True)
        await measure_signed_ingest(quick, rounds_of)  # its figures go straight into the rounds
    report(results, rounds_of)
    rounds_of.write(ROOT / "bench" / "results" / "trust.json", **results)


def report(r: dict[str, Any], rounds: Rounds) -> None:
    """Every figure's rounds into the shared table: median, spread, goal, met or not."""
    for backend in ("sqlite", "postgresql"):
        for name, f in r[f"auth_{backend}"].items():
            floor = name.startswith("bare ES256")  # the floor no verifier beats, not a goal
            for value in f["p99_ms_rounds"]:
                rounds.add(
                    f"auth_{backend}_{name}",
                    value,
                    label=f"auth+authz {name} ({backend}) p99",
                    unit="ms",
                    goal=None if floor else Goal("<", 1),
                    digits=3,
                )
        lg = r[f"login_{backend}"]
        a = lg["argon2"]
        for value in lg["verify_ms_rounds"]:
            rounds.add(
                f"argon2_verify_{backend}",
                value,
                label=f"argon2id verify t={a['time_cost']} m={a['memory_kib'] // 1024} MiB "
                f"p={a['parallelism']} ({backend} run)",
                unit="ms",
            )
        for value in lg["logins_per_s_rounds"]:
            rounds.add(
                f"logins_{backend}",
                value,
                label=f"POST /api/auth/login ({backend}, {lg['in_flight']} in flight)",
                unit="/s",
            )
    print()
    print(rounds.table())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--no-ingest", action="store_true", help="leave out the signed-journal ingest figure"
    )
    add_rounds_argument(parser)
    args = parser.parse_args()
    asyncio.run(main(args.quick, Rounds("trust", rounds=args.rounds), ingest=not args.no_ingest))
