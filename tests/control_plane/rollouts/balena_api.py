"""A local balenaCloud API for the balena deployer's tests: the routes balena-sdk calls.

The real SDK (balena-sdk, its ``pine`` OData client) runs against it, so the requests are the
SDK's own: ``GET /actor/v1/whoami``; ``GET /v7/{resource}?$filter=…&$select=…&$orderby=…&$top=…``
and ``GET /v7/{resource}({id})?…`` answered ``{"d": [...]}``; ``PATCH /v7/{resource}?$filter=…``
and ``PATCH /v7/{resource}({id})`` with a JSON body of fields. Navigation properties
(``belongs_to__application``, ``is_running__release``, ``is_pinned_on__release``) answer
``{"__id": n}`` or null, as balena's API does. The OData ``$filter`` subset is exactly what the
SDK generates for the calls the deployer makes: ``eq``, ``in (…)``, ``and``, ``or``, parentheses,
quoted strings, integers and null; anything else answers 400, so an SDK change shows up here.

A bearer token other than :attr:`BalenaApi.token` answers 401 ``Unauthorized`` (balena's answer).
Devices move only when the test says: :meth:`BalenaApi.advance` moves every updating device one
step (updating → running its pinned release), as the balena supervisor would; a device's
``behaviour`` can keep it updating forever (``stuck``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

NAVIGATION = ("belongs_to__application", "is_running__release", "is_pinned_on__release")
Behaviour = Literal["good", "stuck"]


class ODataError(ValueError):
    """A query this simulator does not speak."""


_TOKEN = re.compile(r"\s*(?:(\()|(\))|(,)|'((?:[^']|'')*)'|(-?\d+)|([A-Za-z_][A-Za-z0-9_]*))")


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ODataError(f"cannot read $filter at {text[pos:]!r}")
        pos = match.end()
        lpar, rpar, comma, string, number, word = match.groups()
        if lpar:
            out.append(("(", None))
        elif rpar:
            out.append((")", None))
        elif comma:
            out.append((",", None))
        elif string is not None:
            out.append(("value", string.replace("''", "'")))
        elif number is not None:
            out.append(("value", int(number)))
        elif word == "null":
            out.append(("value", None))
        else:
            out.append(("word", word))
    return out


Predicate = Any  # a nested tuple: ("and"|"or", left, right) | ("eq"|"in", field, value)


class _Parser:
    """``expr := term (("and"|"or") term)*``, ``term := "(" expr ")" | field op value``."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def _next(self) -> tuple[str, Any]:
        if self.at >= len(self.tokens):
            raise ODataError("$filter ends too early")
        token = self.tokens[self.at]
        self.at += 1
        return token

    def parse(self) -> Predicate:
        expr = self._expr()
        if self.at != len(self.tokens):
            raise ODataError(f"unexpected {self.tokens[self.at]!r} in $filter")
        return expr

    def _expr(self) -> Predicate:
        left = self._term()
        while self.at < len(self.tokens) and self.tokens[self.at] in (
            ("word", "and"),
            ("word", "or"),
        ):
            op = self._next()[1]
            left = (op, left, self._term())
        return left

    def _term(self) -> Predicate:
        kind, value = self._next()
        if kind == "(":
            inner = self._expr()
            if self._next()[0] != ")":
                raise ODataError("unbalanced parentheses in $filter")
            return inner
        if kind != "word":
            raise ODataError(f"expected a field in $filter, got {value!r}")
        op_kind, op = self._next()
        if op_kind != "word" or op not in {"eq", "in"}:
            raise ODataError(f"unsupported operator {op!r} in $filter")
        if op == "eq":
            value_kind, literal = self._next()
            if value_kind != "value":
                raise ODataError("eq needs a literal")
            return ("eq", value, literal)
        if self._next()[0] != "(":
            raise ODataError("in needs a list")
        values: list[Any] = []
        while True:
            value_kind, literal = self._next()
            if value_kind != "value":
                raise ODataError("in needs literals")
            values.append(literal)
            separator = self._next()[0]
            if separator == ")":
                return ("in", value, values)
            if separator != ",":
                raise ODataError("in's list is malformed")


def _plain(row: dict[str, Any], name: str) -> Any:
    value = row.get(name)
    return value["__id"] if isinstance(value, dict) else value


def _matches(row: dict[str, Any], predicate: Predicate) -> bool:
    op = predicate[0]
    if op == "and":
        return _matches(row, predicate[1]) and _matches(row, predicate[2])
    if op == "or":
        return _matches(row, predicate[1]) or _matches(row, predicate[2])
    if predicate[1] not in row:
        raise ODataError(f"no field {predicate[1]!r}")
    value = _plain(row, predicate[1])
    return value == predicate[2] if op == "eq" else value in predicate[2]


@dataclass
class BalenaApi:
    """The fleet's resources and who may read them; :attr:`app` serves them."""

    token: str = "balena-test-token"
    application: list[dict[str, Any]] = field(default_factory=list)
    release: list[dict[str, Any]] = field(default_factory=list)
    device: list[dict[str, Any]] = field(default_factory=list)
    behaviour: dict[str, Behaviour] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def add_fleet(self, slug: str) -> int:
        """A fleet (``application``) by its slug; its id."""
        number = len(self.application) + 1
        self.application.append({"id": number, "slug": slug, "uuid": f"{number:032x}"})
        return number

    def add_release(self, fleet: int, raw_version: str, *, status: str = "success") -> int:
        """A release of ``fleet`` with that version; its id."""
        number = len(self.release) + 100
        self.release.append(
            {
                "id": number,
                "commit": f"{number:040x}",
                "raw_version": raw_version,
                "semver": raw_version,
                "status": status,
                "belongs_to__application": {"__id": fleet},
                "created_at": f"2026-12-07T00:00:{number % 60:02d}Z",
            }
        )
        return number

    def add_device(
        self, fleet: int, name: str, *, running: int | None, behaviour: Behaviour = "good"
    ) -> str:
        """An online, operational device of ``fleet`` named ``name``; its uuid."""
        number = len(self.device) + 1000
        uuid = f"{number:032x}"
        self.device.append(
            {
                "id": number,
                "uuid": uuid,
                "device_name": name,
                "belongs_to__application": {"__id": fleet},
                "is_online": True,
                "is_running__release": None if running is None else {"__id": running},
                "is_pinned_on__release": None,
                "overall_status": "operational",
                "overall_progress": None,
            }
        )
        self.behaviour[uuid] = behaviour
        return uuid

    def by_name(self, name: str) -> dict[str, Any]:
        """The device named ``name``."""
        return next(d for d in self.device if d["device_name"] == name)

    def target(self, device: dict[str, Any]) -> int | None:
        """The release a device should run: its pin, else its fleet's newest successful."""
        pinned = _plain(device, "is_pinned_on__release")
        if pinned is not None:
            return int(pinned)
        fleet = _plain(device, "belongs_to__application")
        ids = [
            r["id"]
            for r in self.release
            if _plain(r, "belongs_to__application") == fleet and r["status"] == "success"
        ]
        return max(ids) if ids else None

    def advance(self) -> None:
        """One supervisor step for every device whose target differs from what it runs."""
        for device in self.device:
            wanted = self.target(device)
            if wanted == _plain(device, "is_running__release"):
                device.update(overall_status="operational", overall_progress=None)
            elif device["overall_status"] != "updating":
                device.update(overall_status="updating", overall_progress=40)
            elif self.behaviour[device["uuid"]] == "good":
                device.update(
                    overall_status="operational",
                    overall_progress=None,
                    is_running__release=None if wanted is None else {"__id": wanted},
                )

    def _table(self, resource: str) -> list[dict[str, Any]]:
        if resource not in {"application", "release", "device"}:
            raise ODataError(f"no resource {resource!r} here")
        rows: list[dict[str, Any]] = getattr(self, resource)
        return rows

    def _select(self, request: Request, resource: str, key: int | None) -> list[dict[str, Any]]:
        rows = self._table(resource)
        if key is not None:
            rows = [r for r in rows if r["id"] == key]
        text = request.query_params.get("$filter")
        if text:
            predicate = _Parser(text).parse()
            rows = [r for r in rows if _matches(r, predicate)]
        return rows

    @property
    def app(self) -> FastAPI:
        """The HTTP face."""
        api = FastAPI()
        path = r"/v7/{target}"

        @api.middleware("http")
        async def authorise(request: Request, call_next: Any) -> Response:
            query = unquote(request.url.query)
            self.requests.append(f"{request.method} {request.url.path}?{query}")
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return PlainTextResponse("Unauthorized", status_code=401)
            try:
                answer: Response = await call_next(request)
            except ODataError as err:
                return PlainTextResponse(str(err), status_code=400)
            return answer

        @api.get("/actor/v1/whoami")
        async def whoami() -> dict[str, Any]:
            return {"id": 1, "actorType": "user", "actorTypeId": 1, "username": "tests"}

        def split(target: str) -> tuple[str, int | None]:
            match = re.fullmatch(r"([a-z_]+)(?:\((\d+)\))?", target)
            if match is None:
                raise ODataError(f"cannot read resource {target!r}")
            return match[1], None if match[2] is None else int(match[2])

        @api.get(path)
        async def read(target: str, request: Request) -> Response:
            try:
                resource, key = split(target)
                rows = self._select(request, resource, key)
            except ODataError as err:
                return PlainTextResponse(str(err), status_code=400)
            order = request.query_params.get("$orderby")
            if order:
                name, _, way = order.partition(" ")
                rows = sorted(rows, key=lambda r: str(r.get(name)), reverse=way == "desc")
            top = request.query_params.get("$top")
            if top:
                rows = rows[: int(top)]
            select = request.query_params.get("$select")
            if select:
                names = select.split(",")
                unknown = [n for n in names if rows and n not in rows[0]]
                if unknown:
                    return PlainTextResponse(f"no field {unknown[0]!r}", status_code=400)
                rows = [{n: r[n] for n in names} for r in rows]
            return JSONResponse({"d": rows})

        @api.patch(path)
        async def write(target: str, request: Request) -> Response:
            body = await request.json()
            try:
                resource, key = split(target)
                rows = self._select(request, resource, key)
            except ODataError as err:
                return PlainTextResponse(str(err), status_code=400)
            for name, value in body.items():
                if name not in NAVIGATION and name not in (rows[0] if rows else {}):
                    return PlainTextResponse(f"no field {name!r}", status_code=400)
                if name in NAVIGATION and value is not None:
                    releases = self._table("release")
                    if not any(r["id"] == value for r in releases):
                        return PlainTextResponse("foreign key violation", status_code=400)
            for row in rows:
                for name, value in body.items():
                    row[name] = {"__id": value} if name in NAVIGATION and value else value
            return Response(status_code=200, content="OK")

        return api
