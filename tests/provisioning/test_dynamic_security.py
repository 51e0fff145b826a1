"""The dynamic-security documents: first document, device grants, answers, and the reconcile plan.

The broker's behaviour behind them is proven on the real Mosquitto in test_broker_mtls.py; here
the pure pieces are pinned so a change to a role or a command is a visible, deliberate one.
"""

from __future__ import annotations

import json

import pytest

from protocols import topics
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
    """A broker on which each device holds exactly its own grants (plus the control plane)."""
    clients = {
        client: role
        for device_id in device_ids
        for client, role in dynsec.device_clients(device_id).items()
    }
    return _view(
        clients={"control-plane": {"control-plane", "broker-admin"}}
        | {client: {role} for client, (role, _) in clients.items()},
        roles=dict(clients.values()),
    )


#: How a device was granted before agents had a certificate of their own: one client, one
#: role over the whole subtree.
WHOLE_SUBTREE = frozenset(
    (kind, "sf/v1/d/reg-1/#", True)
    for kind in ("publishClientSend", "publishClientReceive", "subscribePattern",
                 "unsubscribePattern")
)  # fmt: skip


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


def test_the_register_role_grants_the_journal_and_telemetry_of_its_device_only() -> None:
    own = "sf/v1/d/acme-01-reg-1"
    assert dynsec.device_acls("acme-01-reg-1") == {
        ("publishClientSend", f"{own}/journal", True),
        ("publishClientSend", f"{own}/telemetry", True),
        ("publishClientReceive", f"{own}/journal/ack", True),
        ("subscribeLiteral", f"{own}/journal/ack", True),
        ("unsubscribeLiteral", f"{own}/journal/ack", True),
    }


def test_the_agent_role_grants_the_agent_channels_of_its_device_only() -> None:
    own = "sf/v1/d/acme-01-reg-1"
    received = {f"{own}/cmd", f"{own}/config", f"{own}/release"}
    assert dynsec.agent_acls("acme-01-reg-1") == {
        ("publishClientSend", f"{own}/{channel}", True)
        for channel in ("status", "state", "events", "cmd/result")
    } | {
        (kind, topic, True)
        for topic in received
        for kind in ("publishClientReceive", "subscribeLiteral", "unsubscribeLiteral")
    }


def test_every_channel_is_the_register_s_or_the_agent_s_never_both() -> None:
    register = topics.REGISTER_SENDS | topics.REGISTER_RECEIVES
    agent = topics.AGENT_SENDS | topics.AGENT_RECEIVES
    assert register | agent == set(topics.Channel)
    assert not register & agent


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


@pytest.mark.parametrize(
    ("index", "username", "rolename", "acls"),
    [
        pytest.param(0, "reg-1", "device:reg-1", dynsec.device_acls("reg-1"), id="register"),
        pytest.param(2, "reg-1.agent", "device:reg-1.agent", dynsec.agent_acls("reg-1"),
                     id="agent"),
    ],
)  # fmt: skip
def test_grant_creates_each_session_s_role_then_its_client(
    index: int, username: str, rolename: str, acls: frozenset[dynsec.Acl]
) -> None:
    role, client = dynsec.grant_commands("reg-1")[index : index + 2]

    assert (role["command"], role["rolename"]) == ("createRole", rolename)
    assert {(acl["acltype"], acl["topic"], acl["allow"]) for acl in role["acls"]} == acls
    assert (client["command"], client["username"]) == ("createClient", username)
    assert client["roles"] == [{"rolename": rolename, "priority": 0}]


def test_withdraw_deletes_both_clients_then_both_roles() -> None:
    assert dynsec.withdraw_commands("reg-1") == [
        {"command": "deleteClient", "username": "reg-1"},
        {"command": "deleteClient", "username": "reg-1.agent"},
        {"command": "deleteRole", "rolename": "device:reg-1"},
        {"command": "deleteRole", "rolename": "device:reg-1.agent"},
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
        roles=dict(view.roles) | {"device:orphan.agent": dynsec.agent_acls("orphan")},
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
        pytest.param(
            _view(clients={"reg-1": {"device:reg-1"}}, roles={"device:reg-1": WHOLE_SUBTREE}),
            id="granted-before-agent-certificates",
        ),
        pytest.param(
            _view(
                clients={"reg-1": {"device:reg-1"}},
                roles={"device:reg-1": dynsec.device_acls("reg-1")},
            ),
            id="agent-missing",
        ),
        pytest.param(
            _view(
                clients={name: set(c.roles) for name, c in _granted("reg-1").clients.items()},
                roles=dict(_granted("reg-1").roles)
                | {"device:reg-1.agent": dynsec.agent_acls("reg-1") | dynsec.device_acls("reg-1")},
            ),
            id="agent-granted-the-journal",
        ),
    ],
)  # fmt: skip
def test_a_device_with_more_or_less_than_its_own_grants_is_repaired(
    view: dynsec.BrokerView,
) -> None:
    todo = dynsec.plan(view, active=["reg-1"])

    assert (todo.grant, todo.repair, todo.withdraw) == ((), ("reg-1",), ())


def test_an_unusable_registry_id_is_reported_not_granted() -> None:
    todo = dynsec.plan(_granted(), active=["reg-1", "bad/id"])

    assert (todo.grant, todo.invalid) == (("reg-1",), ("bad/id",))


def test_the_control_plane_is_never_withdrawn() -> None:
    view = _view(clients={"control-plane": {"device:control-plane", "control-plane"}})

    assert "control-plane" not in dynsec.plan(view, active=[]).withdraw
