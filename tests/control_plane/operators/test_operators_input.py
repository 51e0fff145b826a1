"""Inputs the operators API cannot store are refused as 422 problems on both SQL stores.

Regression (issue 9): PostgreSQL refuses a NUL character in text and an integer past 64 bits,
SQLite takes both; a NUL in an email, a display name, a token name, a token id or an audit filter
and a huge ``before_id`` reached the store and answered 500 on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from control_plane.operators.principal import Role
from tests.control_plane.operators.trust_harness import Trust

pytestmark = pytest.mark.services


OPERATOR = {"email": "v@acme.example", "role": "viewer"}
UNSTORABLE = [
    pytest.param("POST", "/api/operators", OPERATOR | {"email": "a\x00@a.example"}, id="email-nul"),
    pytest.param("POST", "/api/operators", OPERATOR | {"display_name": "V\x00"}, id="name-nul"),
    pytest.param("POST", "/api/operators", OPERATOR | {"tenant_id": "acme\x00"}, id="tenant-nul"),
    pytest.param(
        "POST", "/api/operators", OPERATOR | {"email": "İ" * 200 + "@a.example"}, id="email-grows"
    ),
    pytest.param(
        "POST", "/api/tokens", {"name": "ci\x00", "scopes": ["read"]}, id="token-name-nul"
    ),
    pytest.param("POST", "/api/tokens/abc%00def/revoke", None, id="token-id-nul"),
    pytest.param("GET", "/api/audit?actor=a%00b", None, id="audit-actor-nul"),
    pytest.param("GET", f"/api/audit?before_id={2**63}", None, id="audit-before-id-past-64-bits"),
    pytest.param("GET", "/api/audit.csv?action=x%00", None, id="audit-csv-action-nul"),
]


@pytest.mark.parametrize(("method", "path", "body"), UNSTORABLE)
async def test_an_unstorable_input_is_a_422_problem(
    trust: Trust, method: str, path: str, body: dict[str, Any] | None
) -> None:
    await trust.operator("boss@acme.example", Role.TENANT_ADMIN)
    boss = await trust.admin_login("boss@acme.example")

    answer = await boss.client.request(method, path, json=body, headers={"X-CSRF-Token": boss.csrf})

    assert answer.status_code == 422, answer.text
    assert answer.json()["reason"] == "invalid_request"


async def test_a_login_with_an_unstorable_email_is_a_422_problem(trust: Trust) -> None:
    body = {"email": "ops\x00@acme.example", "password": "whatever"}

    answer = await trust.client().post("/api/auth/login", json=body)

    assert answer.status_code == 422, answer.text
