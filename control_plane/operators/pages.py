"""The console's login pages: email and password, the admin's TOTP code (and its enrolment),
logout. Plain HTML forms, so they work without JavaScript.

Every form is CSRF-protected: the login form by a double-submit nonce (a SameSite=Strict cookie
and the same value in the form; a cross-site page can set neither), the code and logout forms
by the session's own CSRF token. Session cookies are HttpOnly, SameSite=Strict, and Secure when
the request came over HTTPS.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from control_plane.operators import login, sessions, totp
from control_plane.operators.errors import OperatorsError, Unauthenticated
from control_plane.operators.gatekeeper import client_address, get_gatekeeper
from control_plane.operators.schemas import EMAIL_LENGTH, EMAIL_PATTERN
from control_plane.operators.sessions import SESSION_COOKIE
from control_plane.problems import headers_of

router = APIRouter(include_in_schema=False)
_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=[_HERE / "templates", _HERE.parent / "console" / "templates"])
LOGIN_CSRF_COOKIE = "sf_login_csrf"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(
    request: Request, response: Response, opened: login.Opened, lifetime_ms: int
) -> None:
    """Hand the browser its session id: HttpOnly, SameSite=Strict, Secure over HTTPS."""
    response.set_cookie(
        SESSION_COOKIE,
        opened.secret,
        max_age=max(1, lifetime_ms // 1000),
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    """Forget the session id in the browser."""
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _client(request: Request) -> login.Client:
    return login.Client(
        address=client_address(request), user_agent=request.headers.get("user-agent", "")
    )


def _login_page(
    request: Request,
    *,
    next_path: str,
    error: OperatorsError | None = None,
    email: str = "",
) -> HTMLResponse:
    nonce = sessions.new_secret()
    response = templates.TemplateResponse(
        request,
        "login.html",
        {"csrf_token": nonce, "next": next_path, "error": error, "email": email},
        status_code=error.status if error else status.HTTP_200_OK,
        headers=headers_of(error) if error else None,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        nonce,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    """The login form."""
    return _login_page(request, next_path=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login_submit(
    request: Request,
    email: Annotated[str, Form(max_length=EMAIL_LENGTH, pattern=EMAIL_PATTERN)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password; an admin goes on to the code page, everyone else is logged in."""
    gatekeeper = get_gatekeeper(request)
    next_path = safe_next(next)
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not nonce or not hmac.compare_digest(nonce, csrf_token):
        error = Unauthenticated("the login form expired or came from another site; try again")
        return _login_page(request, next_path=next_path, error=error, email=email)
    try:
        gatekeeper.login_buckets.take(client_address(request))
        opened = await login.login(
            gatekeeper, email=email, password=password, client=_client(request)
        )
    except OperatorsError as err:
        return _login_page(request, next_path=next_path, error=err, email=email)
    target = next_path if opened.stage == "active" else f"/login/totp?next={next_path}"
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    lifetime = (
        gatekeeper.settings.session_absolute_ms
        if opened.stage == "active"
        else gatekeeper.settings.totp_pending_ms
    )
    set_session_cookie(request, response, opened, lifetime)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


async def _totp_page(
    request: Request, *, next_path: str, error: OperatorsError | None = None
) -> Response:
    gatekeeper = get_gatekeeper(request)
    secret = request.cookies.get(SESSION_COOKIE)
    try:
        operator = await login.pending_operator(gatekeeper, secret)
        seed = await login.totp_enrolment(gatekeeper, secret)
    except Unauthenticated:
        return RedirectResponse(f"/login?next={next_path}", status_code=status.HTTP_303_SEE_OTHER)
    if secret is None:
        raise RuntimeError("a pending login without its secret (pending_operator refuses that)")
    enrolment = None
    if seed is not None:
        uri = totp.provisioning_uri(seed, email=operator["email"])
        enrolment = {"seed": seed, "uri": uri, "qr_svg": totp.qr_svg(uri)}
    return templates.TemplateResponse(
        request,
        "totp.html",
        {
            "email": operator["email"],
            "enrolment": enrolment,
            "csrf_token": sessions.csrf_token(secret),
            "next": next_path,
            "error": error,
        },
        status_code=error.status if error else status.HTTP_200_OK,
        headers=headers_of(error) if error else None,
    )


@router.get("/login/totp", response_class=HTMLResponse)
async def totp_page(request: Request, next: str | None = None) -> Response:
    """The admin's code; on the first login, the authenticator's QR code first."""
    return await _totp_page(request, next_path=safe_next(next))


@router.post("/login/totp", response_class=HTMLResponse)
async def totp_submit(
    request: Request,
    code: Annotated[str, Form(max_length=16, pattern=r"^[0-9 ]*$")],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the code; the pending login becomes a full session with a new id."""
    gatekeeper = get_gatekeeper(request)
    next_path = safe_next(next)
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret or not sessions.csrf_matches(secret, csrf_token):
        return RedirectResponse(f"/login?next={next_path}", status_code=status.HTTP_303_SEE_OTHER)
    try:
        gatekeeper.login_buckets.take(client_address(request))
        opened = await login.submit_code(
            gatekeeper, secret=secret, code=code, client=_client(request)
        )
    except Unauthenticated:
        return RedirectResponse(f"/login?next={next_path}", status_code=status.HTTP_303_SEE_OTHER)
    except OperatorsError as err:
        return await _totp_page(request, next_path=next_path, error=err)
    response = RedirectResponse(next_path, status_code=status.HTTP_303_SEE_OTHER)
    set_session_cookie(request, response, opened, gatekeeper.settings.session_absolute_ms)
    return response


@router.post("/logout")
async def logout(
    request: Request, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    """End the session (its CSRF token proves the form is the console's own)."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret and not sessions.csrf_matches(secret, csrf_token):
        return HTMLResponse(
            "logout refused: the form did not carry this session's CSRF token",
            status_code=status.HTTP_403_FORBIDDEN,
        )
    await login.logout(get_gatekeeper(request), secret=secret, client=_client(request))
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    clear_session_cookie(request, response)
    return response
