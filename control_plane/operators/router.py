"""REST endpoints of operators: log in and out, who am I, operators, API tokens, the audit log.

Domain errors are not caught here: they are problem-details answers (`control_plane.problems`).
The console's HTML login pages are `pages`; ``router`` includes them, so the app needs one line.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from control_plane.inputs import RefPath, Utf8
from control_plane.operators import audit, login, service
from control_plane.operators.audit_page import router as audit_pages
from control_plane.operators.errors import (
    InvalidOperator,
    LockedOut,
    LoginRefused,
    OperatorExists,
    OperatorNotFound,
    RateLimited,
    TenantNotFound,
    TokenNotFound,
    TotpRequired,
)
from control_plane.operators.gatekeeper import Gatekeeper, client_address, get_gatekeeper
from control_plane.operators.pages import clear_session_cookie, set_session_cookie
from control_plane.operators.pages import router as pages_router
from control_plane.operators.policy import (
    ROLE_ACTIONS,
    SCOPE_ACTIONS,
    AuditRead,
    Authenticated,
    OperatorsRead,
    OperatorsWrite,
    Scope,
    TokensWrite,
)
from control_plane.operators.principal import Principal
from control_plane.operators.schemas import (
    AuditEntryOut,
    LoginIn,
    LoginOut,
    OperatorCreatedOut,
    OperatorIn,
    OperatorOut,
    PrincipalOut,
    TokenCreatedOut,
    TokenIn,
    TokenOut,
    moment,
)
from control_plane.operators.sessions import SESSION_COOKIE
from control_plane.problems import problem_responses
from protocols.limits import INT64_MAX, PRINTABLE_PATTERN

api = APIRouter(prefix="/api", tags=["operators"])


def _principal_out(principal: Principal) -> PrincipalOut:
    actions = ROLE_ACTIONS[principal.role]
    if principal.scopes is not None:
        granted = frozenset().union(
            *(SCOPE_ACTIONS[Scope(s)] for s in principal.scopes if s in set(Scope))
        )
        actions = actions & granted
    return PrincipalOut(
        operator_id=principal.operator_id,
        email=principal.email,
        role=principal.role,
        tenant_id=principal.tenant_id,
        via=principal.via,
        scopes=sorted(principal.scopes) if principal.scopes is not None else None,
        actions=sorted(action.value for action in actions),
    )


def _operator_out(view: service.OperatorView) -> OperatorOut:
    return OperatorOut(
        id=view.id,
        email=view.email,
        display_name=view.display_name,
        role=view.role,
        tenant_id=view.tenant_id,
        totp_enrolled=view.totp_enrolled,
        created_by=view.created_by,
        created_at=moment(view.created_at),
        disabled_at=moment(view.disabled_at),
    )


def _token_out(view: service.TokenView) -> TokenOut:
    return TokenOut(
        id=view.id,
        operator_id=view.operator_id,
        name=view.name,
        scopes=list(view.scopes),
        created_at=moment(view.created_at),
        expires_at=moment(view.expires_at),
        revoked_at=moment(view.revoked_at),
        last_used_at=moment(view.last_used_at),
        last_used_from=view.last_used_from,
    )


def _client(request: Request) -> login.Client:
    return login.Client(
        address=client_address(request), user_agent=request.headers.get("user-agent", "")
    )


@api.post(
    "/auth/login",
    responses=problem_responses(LoginRefused, TotpRequired, LockedOut, RateLimited),
)
async def api_login(body: LoginIn, request: Request, response: Response) -> LoginOut:
    """Open a console session from a script or the SPA; admins send their TOTP code too."""
    gatekeeper = get_gatekeeper(request)
    gatekeeper.login_buckets.take(client_address(request))
    opened = await login.login(
        gatekeeper,
        email=body.email,
        password=body.password,
        client=_client(request),
        totp_code=body.totp,
        interactive=False,
    )
    set_session_cookie(request, response, opened, gatekeeper.settings.session_absolute_ms)
    return LoginOut(
        principal=_principal_out(opened.principal),
        csrf_token=opened.csrf_token,
        expires_at=moment(opened.expires_at),
    )


@api.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def api_logout(principal: Authenticated, request: Request, response: Response) -> None:
    """End the caller's session (CSRF token required, like every change)."""
    del principal  # authenticated with its CSRF token: that is the check
    await login.logout(
        get_gatekeeper(request), secret=request.cookies.get(SESSION_COOKIE), client=_client(request)
    )
    clear_session_cookie(request, response)


@api.get("/auth/me")
async def me(principal: Authenticated) -> PrincipalOut:
    """Who the caller is, and what the policy table lets them do."""
    return _principal_out(principal)


@api.get("/operators")
async def list_operators(principal: OperatorsRead, request: Request) -> list[OperatorOut]:
    """Operators of the caller's tenant (every tenant's for a platform admin)."""
    views = await service.list_operators(get_gatekeeper(request).engine, by=principal)
    return [_operator_out(view) for view in views]


@api.post(
    "/operators",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(TenantNotFound, OperatorNotFound, OperatorExists, InvalidOperator),
)
async def create_operator(
    body: OperatorIn, principal: OperatorsWrite, request: Request
) -> OperatorCreatedOut:
    """A new operator; the answer holds their password, shown this once."""
    gatekeeper = get_gatekeeper(request)
    view, password = await service.create_operator(
        gatekeeper.engine,
        passwords=gatekeeper.passwords,
        by=principal,
        email=body.email,
        role=body.role,
        tenant_id=body.tenant_id,
        display_name=body.display_name,
        password=body.password,
        now=gatekeeper.now(),
        client=client_address(request),
    )
    return OperatorCreatedOut(operator=_operator_out(view), password=password)


async def _owner(gatekeeper: Gatekeeper, principal: Principal) -> service.OperatorView:
    return await service.find_operator(gatekeeper.engine, email=principal.email)


@api.get("/tokens")
async def list_tokens(principal: TokensWrite, request: Request) -> list[TokenOut]:
    """The caller's API tokens with their last use; revoked and expired ones too."""
    views = await service.list_tokens(
        get_gatekeeper(request).engine, owner_id=principal.operator_id
    )
    return [_token_out(view) for view in views]


@api.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(OperatorNotFound, InvalidOperator),
)
async def create_token(body: TokenIn, principal: TokensWrite, request: Request) -> TokenCreatedOut:
    """A new API token of the caller; the answer holds its secret, shown this once."""
    gatekeeper = get_gatekeeper(request)
    view, secret = await service.create_token(
        gatekeeper.engine,
        settings=gatekeeper.settings,
        owner=await _owner(gatekeeper, principal),
        actor=audit.Actor.of(principal),
        name=body.name,
        scopes=[scope.value for scope in body.scopes],
        days=body.days,
        now=gatekeeper.now(),
        client=client_address(request),
    )
    return TokenCreatedOut(token=_token_out(view), secret=secret)


@api.post("/tokens/{token_id}/revoke", responses=problem_responses(TokenNotFound))
async def revoke_token(token_id: RefPath, principal: TokensWrite, request: Request) -> TokenOut:
    """Revoke a token at once: the caller's own, or (admins) one of their tenant's."""
    gatekeeper = get_gatekeeper(request)
    view = await service.revoke_token(
        gatekeeper.engine,
        by=principal,
        token_id=token_id,
        now=gatekeeper.now(),
        client=client_address(request),
    )
    gatekeeper.forget()  # refused on this instance at once, on others within the cache time
    return _token_out(view)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _query(
    principal: Principal,
    *,
    actor: str | None,
    action: str | None,
    outcome: Literal["ok", "refused"] | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
) -> audit.AuditQuery:
    return audit.AuditQuery(
        tenant_id=principal.tenant_id,  # a tenant admin sees its tenant's entries only
        actor=actor,
        action=action,
        outcome=outcome,
        since=_ms(since),
        until=_ms(until),
        before_id=before_id,
    )


_CSV: dict[int | str, dict[str, Any]] = {
    200: {"description": "the entries as CSV", "content": {"text/csv": {}}}
}
Text = Annotated[str | None, Query(max_length=254, pattern=PRINTABLE_PATTERN), Utf8]
Before = Annotated[int | None, Query(ge=1, le=INT64_MAX, description="entries older than this id")]
Outcome = Literal["ok", "refused"] | None


def _entry(row: dict[str, object]) -> AuditEntryOut:
    return AuditEntryOut.model_validate(
        row
        | {
            "at": moment(row["at"]),  # type: ignore[arg-type]
            "before": json.loads(row["before"]) if row["before"] else None,  # type: ignore[arg-type]
            "after": json.loads(row["after"]) if row["after"] else None,  # type: ignore[arg-type]
        }
    )


@api.get("/audit", responses=problem_responses())
async def search_audit(
    principal: AuditRead,
    request: Request,
    actor: Text = None,
    action: Text = None,
    outcome: Outcome = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: Before = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
) -> list[AuditEntryOut]:
    """Audit entries, newest first; ``action`` ending in ':' matches a prefix ("operators:")."""
    query = _query(
        principal,
        actor=actor,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
        before_id=before_id,
    )
    rows = await audit.search(get_gatekeeper(request).engine, query=query, limit=limit)
    return [_entry(row) for row in rows]


@api.get(
    "/audit.csv",
    response_class=StreamingResponse,
    responses=_CSV | problem_responses(),
)
async def export_audit(
    principal: AuditRead,
    request: Request,
    actor: Text = None,
    action: Text = None,
    outcome: Outcome = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> StreamingResponse:
    """The matching audit entries as CSV, streamed (spreadsheet formulas neutralised)."""
    query = _query(
        principal,
        actor=actor,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
        before_id=None,
    )
    return StreamingResponse(
        audit.export_csv(get_gatekeeper(request).engine, query=query),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="storefleet-audit.csv"'},
    )


router = APIRouter()
router.include_router(api)
router.include_router(pages_router)
router.include_router(audit_pages)  # the console's audit page (search, CSV)
