"""TOTP (RFC 6238) for admins, with pyotp: 6 digits, 30 s steps, one step of clock drift.

A code is accepted once: the step it belongs to is stored, and a code of that step or an
earlier one is refused, so a code read over a shoulder cannot be replayed within its window.
"""

from __future__ import annotations

import io

import pyotp
import segno

ISSUER = "storefleet"
DRIFT_STEPS = 1


def new_secret() -> str:
    """A fresh base32 seed (160 bits) for an admin's authenticator."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code for the enrolment page."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, xmldecl=False, svgns=True)
    return out.getvalue().decode()


def matching_step(secret: str, code: str, *, now_ms: int, last_step: int | None) -> int | None:
    """The time step ``code`` is valid for at ``now_ms`` (±1 step), or None.

    A step at or before ``last_step`` (already used) never matches.
    """
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now_step = now_ms // 1000 // totp.interval
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if pyotp.utils.strings_equal(totp.at(step * totp.interval), code):
            return step
    return None


def code_at(secret: str, *, now_ms: int) -> str:
    """The code an authenticator shows at ``now_ms`` (tests, the demo)."""
    return pyotp.TOTP(secret).at(now_ms // 1000)
