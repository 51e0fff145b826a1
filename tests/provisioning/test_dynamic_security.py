"""The dynamic-security documents: first document, device grants, answers, and the reconcile plan.

The broker's behaviour behind them is proven on the real Mosquitto in test_broker_mtls.py; here
the pure pieces are pinned so a change to a role or a command is a visible, deliberate one.
"""

from __future__ import annotations

import json

import pytest

from provisioning import dynamic_security as dynsec
from provisioning.errors import InvalidDeviceId

WIDENED = dynsec.device_acls("reg-1") | {("subscribePattern", "#", True)}


def _view(
    clients: dict[str, set[str]] | None = None,
    roles: dict[str, frozenset[dynsec.Acl]] | None = None,
    groups: dict[str, set[str]] | None = None,
) -> dynsec.BrokerView:
    return dynsec.BrokerView(
        clients={
            name: dynsec.ClientView(
                roles=frozenset(held), groups=frozenset((groups or {}).get(name, set()))
            )
            for name, held in (clients or {}).items()
        },
        roles=roles or {},
    )


def _granted(*device_ids: str) -> dynsec.BrokerView:
    """A broker on which each device holds exactly its own grant (plus the control plane)."""
    return _view(
        clients={"control-plane": {"control-plane", "broker-admin"}}
        | {device_id: {dynsec.device_role(device_id)} for device_id in device_ids},
        roles={dynsec.device_role(d): dynsec.device_acls(d) for d in device_ids},
    )


def test_the_first_document_holds_the_control_plane_only_and_denies_by_default() -> None:
    document = dynsec.initial_document()

    assert document["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": False,
    }
    assert [client["username"] for client in document["clients"]] == ["control-plane"]
    assert "password" not in json.dumps(document)  # everyone authenticates by certificate
    roles = {role["rolename"]: role["acls"] for role in document["roles"]}
    assert {(acl["acltype"], acl["topic"]) for acl in roles["control-plane"]} >= {
        ("subscribePattern", "$share/ingest/sf/v1/#"),
        ("subscribePattern", "sf/v1/#"),
    }
    assert {acl["topic"] for acl in roles["broker-admin"]} == {
        "$CONTROL/dynamic-security/v1",
        "$CONTROL/dynamic-security/v1/response",
    }


def test_a_device_role_grants_its_own_subtree_and_nothing_else() -> None:
    assert dynsec.device_acls("acme-01-reg-1") == {
        ("publishClientSend", "sf/v1/d/acme-01-reg-1/#", True),
        ("publishClientReceive", "sf/v1/d/acme-01-reg-1/#", True),
        ("subscribePattern", "sf/v1/d/acme-01-reg-1/#", True),
        ("unsubscribePattern", "sf/v1/d/acme-01-reg-1/#", True),
    }


@pytest.mark.parametrize(
    "device_id",
    [
        pytest.param("+", id="single-level-wildcard"),
        pytest.param("#", id="multi-level-wildcard"),
        pytest.param("a/b", id="two-levels"),
        pytest.param("", id="empty"),
    ],
)
def test_an_id_that_would_widen_the_grant_is_refused(device_id: str) -> None:
    with pytest.raises(InvalidDeviceId):
        dynsec.grant_commands(device_id)


def test_grant_creates_role_then_client_and_withdraw_deletes_both() -> None:
    role, client = dynsec.grant_commands("reg-1")
    withdraw = dynsec.withdraw_commands("reg-1")

    assert (role["command"], role["rolename"]) == ("createRole", "device:reg-1")
    assert {(acl["acltype"], acl["topic"], acl["allow"]) for acl in role["acls"]} == (
        dynsec.device_acls("reg-1")
    )
    assert (client["command"], client["username"]) == ("createClient", "reg-1")
    assert client["roles"] == [{"rolename": "device:reg-1", "priority": 0}]
    assert withdraw == [
        {"command": "deleteClient", "username": "reg-1"},
        {"command": "deleteRole", "rolename": "device:reg-1"},
    ]


def _answer(batch: str, index: int, command: str, error: str | None = None) -> dict[str, object]:
    answer: dict[str, object] = {"command": command, "correlationData": f"{batch}:{index}"}
    if error is not None:
        answer["error"] = error
    return answer


def test_answers_are_matched_by_correlation_and_repeats_count_as_done() -> None:
    payload = json.dumps(
        {
            "responses": [
                _answer("b1", 0, "createRole", "Role already exists"),
                _answer("b1", 1, "createClient"),
                _answer("b1", 2, "deleteClient", "Client not found"),
            ]
        }
    ).encode()

    answers = dynsec.decode_answers(payload, batch="b1", count=3)

    assert answers is not None
    assert [answer.ok for answer in answers] == [True, True, True]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"responses": [{"command": "x", "correlationData": "b2:0"}]}',
                     id="other-batch"),
        pytest.param(b'{"responses": [{"command": "x"}]}', id="untagged"),
        pytest.param(b"[1, 2]", id="not-an-object"),
    ],
)  # fmt: skip
def test_traffic_of_another_admin_is_not_our_answer(payload: bytes) -> None:
    assert dynsec.decode_answers(payload, batch="b1", count=1) is None


def test_an_answer_missing_a_command_is_malformed() -> None:
    payload = json.dumps({"responses": [_answer("b1", 0, "createRole")]}).encode()

    with pytest.raises(ValueError, match="1 of 2"):
        dynsec.decode_answers(payload, batch="b1", count=2)


def test_a_real_error_is_not_ok() -> None:
    answer = dynsec.Answer(command="createClient", error="Invalid/missing username", data={})

    assert not answer.ok


def test_broker_view_reads_the_verbose_listings() -> None:
    clients = dynsec.Answer(
        command="listClients",
        error=None,
        data={
            "clients": [
                {"username": "reg-1", "roles": [{"rolename": "device:reg-1"}], "groups": []},
                {"username": "ops", "roles": [], "groups": [{"groupname": "admins"}]},
            ]
        },
    )
    roles = dynsec.Answer(
        command="listRoles",
        error=None,
        data={
            "roles": [
                {
                    "rolename": "device:reg-1",
                    "acls": [
                        {"acltype": "subscribePattern", "topic": "sf/v1/d/reg-1/#", "allow": True}
                    ],
                }
            ]
        },
    )

    view = dynsec.broker_view(clients, roles)

    assert view.clients["reg-1"].roles == {"device:reg-1"}
    assert view.clients["ops"].groups == {"admins"}
    assert view.roles["device:reg-1"] == {("subscribePattern", "sf/v1/d/reg-1/#", True)}


def test_a_broker_in_step_needs_nothing() -> None:
    assert dynsec.plan(_granted("reg-1", "reg-2"), active=["reg-1", "reg-2"]).empty


def test_an_active_device_the_broker_does_not_know_is_granted() -> None:
    todo = dynsec.plan(_granted("reg-1"), active=["reg-1", "reg-2"])

    assert (todo.grant, todo.repair, todo.withdraw) == (("reg-2",), (), ())


def test_a_device_no_longer_active_is_withdrawn_and_the_rest_left_alone() -> None:
    view = _granted("reg-1", "reg-old")
    view = _view(
        clients={name: set(client.roles) for name, client in view.clients.items()}
        | {"ops-admin": {"broker-admin"}},
        roles=dict(view.roles) | {"device:orphan": dynsec.device_acls("orphan")},
    )

    todo = dynsec.plan(view, active=["reg-1"])

    assert (todo.grant, todo.repair, todo.withdraw) == ((), (), ("orphan", "reg-old"))


@pytest.mark.parametrize(
    "view",
    [
        pytest.param(
            _view(
                clients={"reg-1": {"device:reg-1", "control-plane"}},
                roles={"device:reg-1": dynsec.device_acls("reg-1")},
            ),
            id="extra-role",
        ),
        pytest.param(
            _view(
                clients={"reg-1": {"device:reg-1"}},
                roles={"device:reg-1": WIDENED},
            ),
            id="widened-role",
        ),
        pytest.param(
            _view(
                clients={"reg-1": {"device:reg-1"}},
                roles={"device:reg-1": dynsec.device_acls("reg-1")},
                groups={"reg-1": {"admins"}},
            ),
            id="in-a-group",
        ),
        pytest.param(_view(clients={"reg-1": {"device:reg-1"}}), id="role-missing"),
    ],
)  # fmt: skip
def test_a_device_with_more_or_less_than_its_own_grant_is_repaired(view: dynsec.BrokerView) -> None:
    todo = dynsec.plan(view, active=["reg-1"])

    assert (todo.grant, todo.repair, todo.withdraw) == ((), ("reg-1",), ())


def test_an_unusable_registry_id_is_reported_not_granted() -> None:
    todo = dynsec.plan(_granted(), active=["reg-1", "bad/id"])

    assert (todo.grant, todo.invalid) == (("reg-1",), ("bad/id",))


def test_the_control_plane_is_never_withdrawn() -> None:
    view = _view(clients={"control-plane": {"device:control-plane", "control-plane"}})

    assert "control-plane" not in dynsec.plan(view, active=[]).withdraw
