"""The policy table, restated here by hand: a change to what a role may do must change this too."""

from __future__ import annotations

import pytest

from control_plane.operators.errors import Forbidden
from control_plane.operators.policy import (
    GRANTABLE,
    ROLE_ACTIONS,
    Action,
    permits,
    tenant_scope,
)
from control_plane.operators.principal import Principal, Role

P, T, OP, V = Role.PLATFORM_ADMIN, Role.TENANT_ADMIN, Role.OPERATOR, Role.VIEWER
#: action → the roles that may perform it, written out independently of policy.py
EXPECTED: dict[str, set[Role]] = {
    "devices:read": {P, T, OP, V},
    "enrolments:read": {P, T, OP, V},
    "catalog:read": {P, T, OP, V},
    "sales:read": {P, T, OP, V},
    "rollouts:read": {P, T, OP, V},
    "reports:read": {P, T, OP, V},
    "alerts:read": {P, T, OP, V},
    "alerts:ack": {P, T, OP},
    "notifications:manage": {P, T},  # where a tenant's alerts are sent (issue 13)
    "config:read": {P, T, OP, V},
    "config:write": {P, T, OP},
    "staff:write": {P, T, OP},
    "tenant_config:write": {P, T},
    "devices:write": {P, T, OP},
    "commands:send": {P, T, OP},
    "enrolments:write": {P, T, OP},
    "catalog:write": {P, T, OP},
    "tokens:write": {P, T, OP},
    "rollouts:write": {P, T, OP},  # operators run rollouts (issue 11)
    "releases:publish": {P},  # releases are platform-wide, signed by the platform's keys
    "stores:write": {P, T},
    "operators:read": {P, T},
    "operators:write": {P, T},
    "audit:read": {P, T},
    "tenants:write": {P},
    "ca:write": {P},
    "customers:read": {P, T, OP},  # personal data: not for viewers (issue 14)
    "customers:write": {P, T, OP},
    "customers:export": {P, T},  # GDPR export and erasure: tenant admins
    "customers:erase": {P, T},
    "loyalty:adjust": {P, T},  # a manual change of points or store credit is money
    "stock:read": {P, T, OP, V},  # on-hand across stores, transfers, reorder list (issue 14)
    "stock:write": {P, T, OP},  # low-stock thresholds
}


def _principal(role: Role, *, scopes: frozenset[str] | None = None) -> Principal:
    return Principal(
        operator_id="op",
        email="op@example.com",
        role=role,
        tenant_id=None if role is Role.PLATFORM_ADMIN else "acme",
        via="session" if scopes is None else "token",
        scopes=scopes,
    )


def test_every_action_is_in_the_expected_table() -> None:
    assert set(EXPECTED) == {action.value for action in Action}


@pytest.mark.parametrize("role", list(Role), ids=str)
@pytest.mark.parametrize("action", list(Action), ids=str)
def test_role_may_perform_exactly_the_expected_actions(role: Role, action: Action) -> None:
    assert permits(_principal(role), action) is (role in EXPECTED[action.value])


@pytest.mark.parametrize(
    ("scopes", "action", "allowed"),
    [
        pytest.param({"read"}, Action.DEVICES_READ, True, id="read-reads"),
        pytest.param({"read"}, Action.DEVICES_WRITE, False, id="read-cannot-write"),
        pytest.param({"read"}, Action.AUDIT_READ, False, id="read-is-not-audit"),
        pytest.param({"devices"}, Action.COMMANDS_SEND, True, id="devices-sends-commands"),
        pytest.param({"devices"}, Action.CATALOG_WRITE, False, id="devices-not-catalog"),
        pytest.param({"catalog", "read"}, Action.CATALOG_WRITE, True, id="two-scopes"),
        pytest.param({"enrolments"}, Action.ENROLMENTS_WRITE, True, id="enrolments"),
        pytest.param({"tenants"}, Action.TOKENS_WRITE, False, id="no-scope-mints-tokens"),
        pytest.param({"no-such-scope"}, Action.DEVICES_READ, False, id="unknown-scope"),
    ],
)
def test_a_token_is_limited_to_its_scopes(scopes: set[str], action: Action, allowed: bool) -> None:
    assert permits(_principal(P, scopes=frozenset(scopes)), action) is allowed


def test_a_scope_never_widens_the_owners_role() -> None:
    viewer_token = _principal(V, scopes=frozenset({"devices", "catalog", "tenants"}))

    assert not permits(viewer_token, Action.DEVICES_WRITE)
    assert not permits(viewer_token, Action.CATALOG_WRITE)
    assert not permits(viewer_token, Action.TENANTS_WRITE)
    assert permits(viewer_token, Action.DEVICES_READ)


@pytest.mark.parametrize(
    ("granter", "grantable"),
    [
        pytest.param(P, {P, T, OP, V}, id="platform-admin"),
        pytest.param(T, {T, OP, V}, id="tenant-admin"),
        pytest.param(OP, set(), id="operator"),
        pytest.param(V, set(), id="viewer"),
    ],
)
def test_a_role_grants_no_role_wider_than_its_own(granter: Role, grantable: set[Role]) -> None:
    assert set(GRANTABLE[granter]) == grantable


def test_a_tenant_principal_acts_on_its_own_tenant_whatever_it_asks() -> None:
    tenant_admin = _principal(T)

    assert tenant_scope(tenant_admin, None, action=Action.DEVICES_READ) == "acme"
    assert tenant_scope(tenant_admin, "acme", action=Action.DEVICES_READ) == "acme"
    with pytest.raises(Forbidden, match="tenant 'globex' is not yours"):
        tenant_scope(tenant_admin, "globex", action=Action.DEVICES_READ)


def test_a_platform_admin_acts_on_the_tenant_it_names_or_all() -> None:
    root = _principal(P)

    assert tenant_scope(root, "globex", action=Action.DEVICES_READ) == "globex"
    assert tenant_scope(root, None, action=Action.DEVICES_READ) is None


def test_the_table_has_a_row_for_every_role() -> None:
    assert set(ROLE_ACTIONS) == set(Role)
