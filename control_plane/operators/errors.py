"""The domain errors of operators; each carries the HTTP ``status`` it answers with.

Raised by the services and by the `policy.require` dependency, never caught by routers: they are
`control_plane.problems.DomainError`s, which the app's problem-details handler answers. ``reason``
is stable for clients, ``advice`` says what to do, and the 401/423/429 ones set ``headers``
(WWW-Authenticate, Retry-After), which the handler puts on the answer.

    OperatorsError
    ├── Unauthenticated          401  no session or token, or one that is unknown/expired/revoked
    ├── LoginRefused             401  wrong email, password or TOTP code (one message for all)
    │   └── TotpRequired         401  password right, the admin must give a TOTP code
    ├── LockedOut                423  too many failed logins for that account: wait
    ├── LoginRequired            303  a console page without a session: go to /login first
    ├── CsrfRefused              403  a session's unsafe request without its CSRF token
    ├── Forbidden                403  role or token scope does not permit the action, or a
    │                                 foreign tenant
    ├── RateLimited              429  the client used up its requests per minute
    ├── OperatorNotFound         404
    ├── TokenNotFound            404
    ├── OperatorExists           409
    └── InvalidOperator          422  a role and tenant that do not fit, an unknown scope

An unknown tenant is the registry's one ``TenantNotFound`` (``control_plane.devices.errors``),
re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import quote

from control_plane.devices.errors import TenantNotFound
from control_plane.problems import DomainError

__all__ = [
    "CsrfRefused",
    "Forbidden",
    "InvalidOperator",
    "LockedOut",
    "LoginRefused",
    "LoginRequired",
    "OperatorExists",
    "OperatorNotFound",
    "OperatorsError",
    "RateLimited",
    "TenantNotFound",
    "TokenNotFound",
    "TotpRequired",
    "Unauthenticated",
]


class OperatorsError(DomainError):
    """Base of every refusal of the operators domain."""

    status = 400
    reason = "operators_error"


class Unauthenticated(OperatorsError):  # noqa: N818 - named for what was refused
    """No credentials, or credentials that no longer prove anything."""

    status = 401
    reason = "unauthenticated"
    advice = "log in at /login, or send 'Authorization: Bearer <API token>'"
    headers = MappingProxyType({"WWW-Authenticate": 'Bearer realm="storefleet"'})

    def __init__(self, detail: str = "authentication required") -> None:
        super().__init__(detail)


class LoginRequired(OperatorsError):  # noqa: N818 - named for what was refused
    """A console page asked for without a (live) session: the browser is sent to log in.

    A redirect, not a refusal a person reads: the login page brings them back to ``next``.
    """

    status = 303
    reason = "login_required"
    advice = "log in; the login page brings you back"

    def __init__(self, path: str, query: str = "") -> None:
        target = path + (f"?{query}" if query else "")
        super().__init__(f"{target} needs a logged-in operator")
        self.headers = MappingProxyType({"Location": "/login?next=" + quote(target, safe="/")})


class LoginRefused(OperatorsError):  # noqa: N818 - named for what was refused
    """Wrong email, password or code: one answer, so the form tells a guesser nothing."""

    status = 401
    reason = "login_refused"
    advice = "check the email, password and code; repeated failures lock the account for a while"

    def __init__(self, detail: str = "wrong email, password or code") -> None:
        super().__init__(detail)


@dataclass(eq=False)
class TotpRequired(LoginRefused):
    """The password was right; an admin must also give the code of their authenticator."""

    reason = "totp_required"
    advice = "send the 6-digit code of your authenticator app as 'totp'"
    message = "a TOTP code is required for this account"


class LockedOut(OperatorsError):  # noqa: N818 - named for what was refused
    """Too many failures for that account: refused without looking at the password."""

    status = 423
    reason = "locked_out"

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        self.advice = f"wait {self.retry_after} s, or ask an admin to check the audit log"
        self.headers = MappingProxyType({"Retry-After": str(self.retry_after)})
        super().__init__(f"too many failed logins; locked for another {self.retry_after} s")


@dataclass(eq=False)
class CsrfRefused(OperatorsError):  # noqa: N818 - named for what was refused
    """An unsafe request on a session without the session's CSRF token."""

    status = 403
    reason = "csrf_refused"
    advice = "send the session's CSRF token as 'X-CSRF-Token' or the form field 'csrf_token'"
    message = "missing or wrong CSRF token"


@dataclass(eq=False)
class Forbidden(OperatorsError):  # noqa: N818 - named for what was refused
    """Authenticated, but the role, the token's scopes or the tenant do not allow it."""

    status = 403
    reason = "forbidden"
    advice = "ask an admin of your tenant for a role (or a token scope) that allows it"
    message = "{action} refused: {detail}"

    action: str
    detail: str


class RateLimited(OperatorsError):  # noqa: N818 - named for what was refused
    """The client's bucket is empty."""

    status = 429
    reason = "rate_limited"

    def __init__(self, retry_after: float, limit: int, *, first: bool = True) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        self.limit = limit
        self.first = first  # the first refusal of a burst (audited; the rest only counted)
        self.advice = f"at most {limit} requests per minute; retry in {self.retry_after} s"
        self.headers = MappingProxyType({"Retry-After": str(self.retry_after)})
        super().__init__(f"too many requests; retry in {self.retry_after} s")


@dataclass(eq=False)
class OperatorNotFound(OperatorsError):  # noqa: N818 - named for what was refused
    """No such operator (or one of another tenant)."""

    status = 404
    reason = "operator_not_found"
    message = "operator {who!r} does not exist"

    who: str


@dataclass(eq=False)
class TokenNotFound(OperatorsError):  # noqa: N818 - named for what was refused
    """No such API token (or one the principal may not see)."""

    status = 404
    reason = "token_not_found"
    message = "API token {token_id!r} does not exist"

    token_id: str


@dataclass(eq=False)
class OperatorExists(OperatorsError):  # noqa: N818 - named for what was refused
    """An operator with that email exists already."""

    status = 409
    reason = "operator_exists"
    message = "an operator with email {email!r} exists already"

    email: str


class InvalidOperator(OperatorsError):  # noqa: N818 - named for what was refused
    """A role and tenant that do not fit, or an unknown scope."""

    status = 422
    reason = "invalid_operator"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
