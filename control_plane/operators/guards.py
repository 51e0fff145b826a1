"""Which routes are guarded by what, read from the app itself; and the OpenAPI that says so.

How it works: a route is guarded when one of its dependencies is a `policy.require` (or
`policy.page`, or `policy.Authenticated`) marker; :func:`guard_of` finds it by walking the
route's dependency tree, so the answer comes from what FastAPI will run, never from a list kept
beside the routes. The access-table test enumerates the app's routes through it (a new route the
table does not know fails), and :func:`document_guards` adds to the OpenAPI document what every
guarded operation may answer (401, 403, 429 as problems), how to authenticate (a bearer API token
or the console's session cookie) and which action it needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext, iter_route_contexts

from control_plane.operators.errors import CsrfRefused, Forbidden, RateLimited, Unauthenticated
from control_plane.operators.policy import AUTHENTICATED, Guard
from control_plane.problems import problem_responses

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "apiToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "an API token (sft_…): `storefleet operators token create` or /api/tokens",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "sf_session",
        "description": "the console's session (log in at /login); unsafe methods need X-CSRF-Token",
    },
}
_REFUSALS = problem_responses(Unauthenticated, Forbidden, CsrfRefused, RateLimited, invalid=False)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


def routes(app: FastAPI) -> list[RouteContext]:
    """Every route of ``app`` as served, included routers' with their prefixes, mounts too."""
    return list(iter_route_contexts(app.routes))


def guard_of(route: RouteContext) -> str | None:
    """The action ``route`` requires (``auth:self``: any principal), or None when it is open."""
    dependant = getattr(route, "dependant", None)
    if not isinstance(dependant, Dependant):
        return None  # a plain Starlette route or a mount: nothing of ours can guard it
    for sub in _dependants(dependant):
        if isinstance(sub.call, Guard):
            return sub.call.action
    return None


def document_guards(app: FastAPI) -> None:
    """State in ``app``'s OpenAPI document how each guarded operation authenticates and refuses."""
    generate = app.openapi
    documented = False

    def openapi() -> dict[str, Any]:
        nonlocal documented
        schema = generate()
        if documented:
            return schema
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
        for route in routes(app):
            action = guard_of(route)
            if action is None or not route.include_in_schema or route.path_format is None:
                continue
            for method in route.methods or ():
                operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                _guard_operation(operation, action)
        documented = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _guard_operation(operation: dict[str, Any], action: str) -> None:
    operation["security"] = [{"apiToken": []}, {"session": []}]
    needs = "any operator" if action == AUTHENTICATED else f"`{action}`"
    operation["description"] = (
        operation.get("description", "") + f"\n\nRequires {needs} (see the policy table)."
    ).strip()
    responses = operation.setdefault("responses", {})
    for status, answer in _REFUSALS.items():
        code = str(status)
        if code in responses:  # the route's own refusals of that status: name both
            responses[code]["description"] += "; " + answer["description"].split(": ", 1)[-1]
        else:
            responses[code] = answer
