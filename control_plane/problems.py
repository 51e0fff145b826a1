"""One answer for every refusal of the HTTP API: an RFC 9457 problem-details body.

How it works: a domain raises a subclass of :class:`DomainError` that names its HTTP ``status``
and a stable machine-readable ``reason``; routers never catch it. The handlers that
:func:`install_problem_handlers` registers once on the app turn it — and FastAPI's request
validation errors, Starlette's HTTP errors (unknown path, wrong method) and any unexpected
exception — into the same ``application/problem+json`` body::

    {"type": "urn:storefleet:problem:device_not_found", "title": "Device not found", "status": 404,
     "detail": "device 'acme-01-r9' does not exist", "reason": "device_not_found",
     "advice": "", "errors": []}

A domain error's ``headers`` (``Retry-After``, ``WWW-Authenticate``, ``Location``) are put on
the answer. ``reason`` and ``advice`` are the fields the appliance's first-boot screen and the
console show (``advice`` says what to do next); ``errors`` lists each invalid field of a 422.
Each refusal is counted in ``storefleet_api_refusals_total{status,reason}`` and logged in one
line, without a traceback. Routers document what they may answer with :func:`problem_responses`,
so the OpenAPI document lists every status a client can get (schemathesis checks it).

Other exception trees (the provisioning library's ``EnrolmentRefused``) join through
``install_problem_handlers(app, translations={...})``: a function from the exception to its
:class:`Problem`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import Counter
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:storefleet:problem:"

REFUSALS = Counter(
    "storefleet_api_refusals_total",
    "HTTP API requests answered with a problem (4xx refusals and 5xx failures), by reason",
    ["status", "reason"],
)


class DomainError(Exception):
    """Base of every control-plane refusal that becomes an HTTP answer.

    Subclasses set ``status`` and ``reason`` (stable, snake_case, part of the API) and may set
    ``advice``: what the caller should do next, shown to operators and field techs as is, and
    ``headers``: HTTP headers the answer carries (``Retry-After``, ``WWW-Authenticate``,
    ``Location``), set per instance when they depend on it.

    A refusal that names what was refused declares only data: it is a ``@dataclass(eq=False)``
    whose fields are its context attributes, and ``message`` is its detail, a
    :meth:`str.format` template filled in with those fields (and ``advice``)::

        @dataclass(eq=False)
        class DeviceNotFound(RegistryError):
            status = HTTPStatus.NOT_FOUND
            reason = "device_not_found"
            message = "device {device_id!r} does not exist"
            device_id: str

    A subclass that is no dataclass is raised with its detail, like any exception.
    """

    status: ClassVar[int] = HTTPStatus.BAD_REQUEST
    reason: ClassVar[str] = "refused"
    message: ClassVar[str] = ""
    advice: str = ""
    headers: Mapping[str, str] = MappingProxyType({})

    def __post_init__(self) -> None:
        """A dataclass refusal's detail: ``message`` with its fields filled in."""
        super().__init__(self.message.format_map(_Attributes(self)))


class _Attributes(Mapping[str, object]):
    """An error's attributes as the mapping :meth:`str.format_map` reads its fields from."""

    def __init__(self, error: DomainError) -> None:
        self._error = error

    def __getitem__(self, name: str) -> object:
        try:
            return getattr(self._error, name)
        except AttributeError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(vars(self._error))

    def __len__(self) -> int:
        return len(vars(self._error))


class InvalidField(BaseModel):
    """One field a request got wrong: where (``loc``), what is wrong, pydantic's error type."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, with storefleet's ``reason``, ``advice`` and field ``errors``."""

    type: str = Field(description="a URI naming the kind of problem: urn:storefleet:problem:…")
    title: str = Field(description="the kind of problem in words (one per type)")
    status: int
    detail: str = Field(description="what went wrong with this request, in words")
    reason: str = Field(description="stable machine-readable code")
    advice: str = Field(default="", description="what to do next, when there is something")
    errors: list[InvalidField] = Field(
        default_factory=list, description="each invalid field (422 only)"
    )


def problem(status: int, *, reason: str, detail: str, advice: str = "") -> Problem:
    """The body for ``status`` and ``reason``."""
    return Problem(
        type=TYPE_PREFIX + reason,
        title=reason.replace("_", " ").capitalize(),
        status=status,
        detail=detail,
        reason=reason,
        advice=advice,
    )


class ProblemResponse(Response):
    """``application/problem+json``; ASCII-escaped so no input character can break encoding."""

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        """Serialise a :class:`Problem` (or a plain mapping)."""
        if isinstance(content, BaseModel):
            content = content.model_dump(mode="json")
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _field(error: Mapping[str, Any]) -> InvalidField:
    loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
    return InvalidField(loc=loc, msg=str(error.get("msg", "")), type=str(error.get("type", "")))


def _invalid(exc: RequestValidationError) -> Problem:
    fields = [_field(error) for error in exc.errors()]
    said = "; ".join(f"{'.'.join(map(str, f.loc))}: {f.msg}" for f in fields[:5])
    more = f" (and {len(fields) - 5} more)" if len(fields) > 5 else ""
    body = problem(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        reason="invalid_request",
        detail=f"{said}{more}" or "the request is not valid",
        advice="correct the fields listed in errors and send the request again",
    )
    body.errors = fields
    return body


_HTTP_REASONS: dict[int, str] = {
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
}

Translate = Callable[[Any], Problem]


def _unreadable_body(exc: Exception) -> bool:
    """FastAPI's 400 for a body it could not decode (not UTF-8): a 422 like any invalid JSON."""
    return (
        isinstance(exc, StarletteHTTPException)
        and exc.status_code == HTTPStatus.BAD_REQUEST
        and isinstance(exc.__cause__, (ValueError, RecursionError))
    )


def headers_of(exc: Exception) -> dict[str, str] | None:
    """The HTTP headers ``exc`` asks its answer to carry: a domain error's or Starlette's."""
    if isinstance(exc, DomainError | StarletteHTTPException):
        return dict(exc.headers or {}) or None
    headers = getattr(exc, "headers", None)  # a translated error's (an enrolment's Retry-After)
    if isinstance(headers, Mapping) and headers:
        return dict(headers)
    return None


class _ProblemHandler:
    """The one exception handler: every kind of error it is registered for, as a problem."""

    def __init__(self, translations: Mapping[type[Exception], Translate]) -> None:
        self.translations = dict(translations)

    def problem_of(self, exc: Exception) -> Problem:
        """The problem body ``exc`` answers with."""
        if isinstance(exc, DomainError):
            return problem(exc.status, reason=exc.reason, detail=str(exc), advice=exc.advice)
        if isinstance(exc, RequestValidationError):
            return _invalid(exc)
        if _unreadable_body(exc):
            return problem(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                reason="invalid_request",
                detail=f"the body cannot be read as JSON ({exc.__cause__})",
                advice="send the body as JSON encoded in UTF-8",
            )
        if isinstance(exc, StarletteHTTPException):
            reason = _HTTP_REASONS.get(exc.status_code, f"http_{exc.status_code}")
            detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
            return problem(exc.status_code, reason=reason, detail=detail)
        for kind in type(exc).__mro__:
            translate = self.translations.get(kind)
            if translate is not None:
                return translate(exc)
        return problem(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            reason="internal_error",
            detail=f"the control plane failed ({type(exc).__name__}); its log has the traceback",
        )

    async def __call__(self, request: Request, exc: Exception) -> Response:
        """Answer ``exc``; count it and log it in one line (a 500's traceback is Starlette's)."""
        body = self.problem_of(exc)
        REFUSALS.labels(str(body.status), body.reason).inc()
        if body.status < HTTPStatus.INTERNAL_SERVER_ERROR:
            log.info(
                "%s %s refused %d %s: %s%s",
                request.method,
                request.url.path,
                body.status,
                body.reason,
                body.detail,
                f"; {body.advice}" if body.advice else "",
            )
        return ProblemResponse(body, status_code=body.status, headers=headers_of(exc))


def install_problem_handlers(
    app: FastAPI, *, translations: Mapping[type[Exception], Translate] | None = None
) -> None:
    """Answer every refusal of ``app`` with a problem body; document the body in OpenAPI.

    ``translations`` maps an exception tree that is not a :class:`DomainError` (a library's) to
    the function that makes its problem. Anything else unexpected answers 500 as a problem too;
    Starlette then re-raises it, so the server logs its traceback once: that one is a bug.
    """
    handler = _ProblemHandler(translations or {})
    for kind in (DomainError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, handler)
    for kind in handler.translations:
        app.add_exception_handler(kind, handler)
    _document_problem(app)


def _document_problem(app: FastAPI) -> None:
    """Put :class:`Problem` in the OpenAPI components, and state every 422 as one.

    FastAPI documents a route's validation error as its own ``HTTPValidationError`` JSON unless
    the route declares 422; the handler answers every one of them as a problem, so the document
    says so too, for every route.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            defs = problem_schema.pop("$defs", {})
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(defs | {"Problem": problem_schema})
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    if _is_fastapi_422(responses.get("422")):
                        responses["422"] = problem_responses()[HTTPStatus.UNPROCESSABLE_ENTITY]
            if "HTTPValidationError" not in json.dumps(schema.get("paths", {})):
                components.pop("HTTPValidationError", None)
                components.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _is_fastapi_422(response: object) -> bool:
    if not isinstance(response, dict):
        return False
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).endswith("/HTTPValidationError")


def problem_responses(
    *refusals: type[DomainError] | int, invalid: bool = True
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for a route: each status it may refuse with, as a problem body.

    ``refusals`` are domain errors (their status and reason are listed) or bare statuses;
    ``invalid`` adds the 422 of a request that fails validation.
    """
    reasons: dict[int, list[str]] = {}
    for refusal in refusals:
        if isinstance(refusal, int):
            reasons.setdefault(refusal, [])
        else:
            reasons.setdefault(refusal.status, []).append(refusal.reason)
    if invalid:
        reasons.setdefault(HTTPStatus.UNPROCESSABLE_ENTITY, []).append("invalid_request")
    return {
        int(status): {
            "description": _phrase(status) + (f": {', '.join(sorted(set(why)))}" if why else ""),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status, why in sorted(reasons.items())
    }
