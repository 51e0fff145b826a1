"""What Mosquitto's dynamic-security plugin is told: the first document, device roles, commands.

How it works (facts measured on Mosquitto 2.0.11, tests/provisioning/test_broker_dynsec.py)
- The broker authenticates every client by its certificate (`use_identity_as_username`): the
  user name is the CN. The plugin then decides every PUBLISH, delivery, SUBSCRIBE and
  UNSUBSCRIBE by the roles of that user, so a refused filter is refused at SUBACK (0x87), which
  the `acl_file` of 2.0 never does. A user the plugin does not know is refused everything.
- 2.0.11 does not expand `%u` or `%c` in the plugin's ACLs, so every device has its own roles.
  An appliance runs two sessions with one key and two certificates, and each CN is granted
  exactly its own channels of its own device (`protocols.topics`: REGISTER_*, AGENT_*), as
  literal topics: client `<id>` (the register's replicator), role `device:<id>`: journal and
  telemetry out, journal/ack in; client `<id>.agent` (the fleet agent), role
  `device:<id>.agent`: status, state, events and cmd/result out, cmd, config and release in.
  Nothing else: no `#`, no `+` over devices, no `$share/…`, no channel of the other process.
  With the broker's client ids bound to the CN (`use_username_as_clientid`) the two sessions
  never replace each other, and no certificate can take another's session.
- The control plane (CN `control-plane`) holds the fleet's topics and the ingest group's shared
  subscriptions, and the broker-admin role on `$CONTROL/dynamic-security/v1`, through which it
  adds and removes devices at run time. It authenticates by certificate: the document holds no
  password at all.
- Withdrawing a device is `deleteClient` of both its clients (kicks their open connections at
  once and leaves a reconnect with no grant) and `deleteRole`. Never `disableClient` alone: it
  kicks, but the plugin only reads `disabled` when it checks a password, so a certificate
  client reconnects with its grants intact.
- The plugin answers one response document per command document, on a topic every admin
  session sees, so each command carries `correlationData` and answers are matched by it.

This module is pure (documents in, documents out); the control plane's
`control_plane.provisioning.broker_access` sends them over MQTT.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from protocols.topics import (
    AGENT_RECEIVES,
    AGENT_SENDS,
    AGENT_SUFFIX,
    PREFIX,
    REGISTER_RECEIVES,
    REGISTER_SENDS,
    SHARED_INGEST_GROUP,
    Channel,
)
from provisioning.ca import CONTROL_PLANE_COMMON_NAME, agent_common_name, validate_device_id
from provisioning.errors import InvalidDeviceId

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
CONTROL_PLANE_ROLE = "control-plane"
BROKER_ADMIN_ROLE = "broker-admin"
DEVICE_ROLE_PREFIX = "device:"
FLEET_TOPICS = "sf/v1/#"

Command = dict[str, Any]
Acl = tuple[str, str, bool]  # (acltype, topic, allow)

#: The plugin's default for anything no role decides: refuse.
DENY_BY_DEFAULT: dict[str, bool] = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": False,
}

#: Errors that mean "already as asked": grants and withdrawals are repeated freely.
_ALREADY_SO = frozenset(
    {
        ("createRole", "Role already exists"),
        ("createClient", "Client already exists"),
        ("deleteClient", "Client not found"),
        ("deleteRole", "Role not found"),
    }
)


def device_role(device_id: str) -> str:
    """The role that holds the grants of the device's register session (client `<id>`)."""
    return f"{DEVICE_ROLE_PREFIX}{device_id}"


def agent_role(device_id: str) -> str:
    """The role that holds the grants of the device's agent session (client `<id>.agent`)."""
    return f"{DEVICE_ROLE_PREFIX}{agent_common_name(device_id)}"


def _channel_acls(
    device_id: str, *, sends: Iterable[Channel], receives: Iterable[Channel]
) -> frozenset[Acl]:
    validate_device_id(device_id)
    acls: set[Acl] = set()
    for channel in sends:
        acls.add(("publishClientSend", f"{PREFIX}/{device_id}/{channel.value}", True))
    for channel in receives:
        topic = f"{PREFIX}/{device_id}/{channel.value}"
        acls |= {
            ("publishClientReceive", topic, True),
            ("subscribeLiteral", topic, True),
            ("unsubscribeLiteral", topic, True),
        }
    return frozenset(acls)


def device_acls(device_id: str) -> frozenset[Acl]:
    """The register's session: the journal and telemetry out, the journal's acks in."""
    return _channel_acls(device_id, sends=REGISTER_SENDS, receives=REGISTER_RECEIVES)


def agent_acls(device_id: str) -> frozenset[Acl]:
    """The agent's session: presence, state, events, command results out; commands,
    configuration and releases in."""
    return _channel_acls(device_id, sends=AGENT_SENDS, receives=AGENT_RECEIVES)


def device_clients(device_id: str) -> dict[str, tuple[str, frozenset[Acl]]]:
    """The device's broker clients (user name = certificate CN) with their role and ACLs."""
    return {
        device_id: (device_role(device_id), device_acls(device_id)),
        agent_common_name(device_id): (agent_role(device_id), agent_acls(device_id)),
    }


def owner_of(client: str) -> str:
    """The device a broker client or role name (without `device:`) belongs to."""
    return client.removesuffix(AGENT_SUFFIX)


def _acl_objects(acls: Iterable[Acl]) -> list[dict[str, Any]]:
    return [
        {"acltype": kind, "topic": topic, "allow": allow, "priority": 0}
        for kind, topic, allow in sorted(acls)
    ]


def _control_plane_acls() -> frozenset[Acl]:
    shared = f"$share/{SHARED_INGEST_GROUP}/{FLEET_TOPICS}"
    return frozenset(
        {
            ("publishClientSend", FLEET_TOPICS, True),
            ("publishClientReceive", FLEET_TOPICS, True),
            ("subscribePattern", FLEET_TOPICS, True),
            ("subscribePattern", shared, True),
            ("unsubscribePattern", FLEET_TOPICS, True),
            ("unsubscribePattern", shared, True),
        }
    )


def _broker_admin_acls() -> frozenset[Acl]:
    return frozenset(
        {
            ("publishClientSend", CONTROL_TOPIC, True),
            ("publishClientReceive", RESPONSE_TOPIC, True),
            ("subscribeLiteral", RESPONSE_TOPIC, True),
            ("unsubscribeLiteral", RESPONSE_TOPIC, True),
        }
    )


def initial_document() -> dict[str, Any]:
    """The plugin's first `dynamic-security.json`: the control plane, no device, deny the rest.

    Devices are added by the control plane as they enrol (and by its reconcile at start).
    """
    return {
        "defaultACLAccess": dict(DENY_BY_DEFAULT),
        "clients": [
            {
                "username": CONTROL_PLANE_COMMON_NAME,
                "textname": "storefleet control plane (certificate CN control-plane)",
                "roles": [
                    {"rolename": CONTROL_PLANE_ROLE, "priority": 0},
                    {"rolename": BROKER_ADMIN_ROLE, "priority": 0},
                ],
            }
        ],
        "groups": [],
        "roles": [
            {"rolename": CONTROL_PLANE_ROLE, "acls": _acl_objects(_control_plane_acls())},
            {"rolename": BROKER_ADMIN_ROLE, "acls": _acl_objects(_broker_admin_acls())},
        ],
    }


def grant_commands(device_id: str) -> list[Command]:
    """Create the device's two roles (with their ACLs, each in the one command) and its two
    clients; repeating them changes nothing.

    One command per role and client, because 2.0.11's plugin rewrites its whole file after
    each change: a fleet's first reconcile costs commands x devices x file size. A role that
    exists with other ACLs than these is the reconcile's to repair.
    """
    commands: list[Command] = []
    for client, (role, acls) in device_clients(device_id).items():
        commands.append({"command": "createRole", "rolename": role, "acls": _acl_objects(acls)})
        commands.append(
            {
                "command": "createClient",
                "username": client,
                "textname": "storefleet agent" if client != device_id else "storefleet device",
                "roles": [{"rolename": role, "priority": 0}],
            }
        )
    return commands


def withdraw_commands(device_id: str) -> list[Command]:
    """Delete the device's clients (their open connections are closed at once) and roles."""
    clients = device_clients(device_id)
    return [{"command": "deleteClient", "username": client} for client in clients] + [
        {"command": "deleteRole", "rolename": role} for role, _ in clients.values()
    ]


def kick_commands(device_id: str) -> list[Command]:
    """Close the device's open connections without changing its grants.

    For a device granted late: a connection made before the grant had its subscriptions
    refused, and only a reconnect makes the device subscribe again.
    """
    return [
        {"command": command, "username": client}
        for client in device_clients(device_id)
        for command in ("disableClient", "enableClient")
    ]


def list_commands() -> list[Command]:
    """Everything the reconcile compares: clients with their roles, roles with their ACLs."""
    return [
        {"command": "listClients", "verbose": True, "count": -1, "offset": 0},
        {"command": "listRoles", "verbose": True, "count": -1, "offset": 0},
        {"command": "setDefaultACLAccess", "acls": [
            {"acltype": kind, "allow": allow} for kind, allow in DENY_BY_DEFAULT.items()
        ]},
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Answer:
    """The plugin's answer to one command."""

    command: str
    error: str | None
    data: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        """Done, or already as asked (an idempotent repeat)."""
        return self.error is None or (self.command, self.error) in _ALREADY_SO


def encode_commands(commands: Sequence[Command], *, batch: str) -> bytes:
    """The command document, each command tagged `<batch>:<index>` to match its answer."""
    tagged = [{**command, "correlationData": f"{batch}:{i}"} for i, command in enumerate(commands)]
    return json.dumps({"commands": tagged}, separators=(",", ":")).encode()


def decode_answers(payload: bytes, *, batch: str, count: int) -> list[Answer] | None:
    """The answers to batch `batch` in command order, or None if `payload` answers another.

    Raises ValueError when the document is for this batch but not what the plugin sends.
    """
    try:
        document = json.loads(payload)
    except ValueError:
        return None  # not ours to judge: another admin's traffic on the shared topic
    responses = document.get("responses") if isinstance(document, dict) else None
    if not isinstance(responses, list):
        return None
    ours: dict[int, Answer] = {}
    for response in responses:
        if not isinstance(response, dict):
            continue
        tag = str(response.get("correlationData", ""))
        prefix, _, index = tag.rpartition(":")
        if prefix != batch or not index.isdigit():
            continue
        data = response.get("data")
        ours[int(index)] = Answer(
            command=str(response.get("command", "")),
            error=None if response.get("error") is None else str(response["error"]),
            data=data if isinstance(data, dict) else {},
        )
    if not ours:
        return None
    if sorted(ours) != list(range(count)):
        msg = f"the broker answered {len(ours)} of {count} commands of batch {batch}"
        raise ValueError(msg)
    return [ours[i] for i in range(count)]


@dataclass(frozen=True, slots=True)
class ClientView:
    """One client as the broker holds it: its roles and groups."""

    roles: frozenset[str]
    groups: frozenset[str]


@dataclass(frozen=True, slots=True)
class BrokerView:
    """The broker's access list: clients by user name, roles with their ACLs."""

    clients: Mapping[str, ClientView]
    roles: Mapping[str, frozenset[Acl]]


def _names(items: object, key: str) -> frozenset[str]:
    if not isinstance(items, list):
        return frozenset()
    return frozenset(str(item[key]) for item in items if isinstance(item, dict) and key in item)


def broker_view(clients: Answer, roles: Answer) -> BrokerView:
    """Read the answers of `listClients` and `listRoles` (verbose) into a view."""
    client_items = clients.data.get("clients", [])
    role_items = roles.data.get("roles", [])
    if not isinstance(client_items, list) or not isinstance(role_items, list):
        msg = "listClients/listRoles answered without their lists"
        raise ValueError(msg)
    return BrokerView(
        clients={
            str(item["username"]): ClientView(
                roles=_names(item.get("roles"), "rolename"),
                groups=_names(item.get("groups"), "groupname"),
            )
            for item in client_items
            if isinstance(item, dict) and "username" in item
        },
        roles={
            str(item["rolename"]): frozenset(
                (str(acl.get("acltype")), str(acl.get("topic")), acl.get("allow") is True)
                for acl in item.get("acls", [])
                if isinstance(acl, dict)
            )
            for item in role_items
            if isinstance(item, dict) and "rolename" in item
        },
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """What makes the broker match the registry."""

    grant: tuple[str, ...]  # active devices the broker does not know: grant, then kick
    repair: tuple[str, ...]  # known, but not exactly their own channels: withdraw, then grant
    withdraw: tuple[str, ...]  # device entries for no active device: delete
    invalid: tuple[str, ...] = ()  # registry ids unusable as a CN and topic level: left out

    @property
    def empty(self) -> bool:
        """Whether the broker already matches."""
        return not (self.grant or self.repair or self.withdraw)


def plan(view: BrokerView, *, active: Iterable[str]) -> Plan:
    """Compare the broker with the registry's active devices.

    A broker entry is a device's if it carries a `device:` role or names an active device or
    its agent; anything else (the control plane, an operator's own admin account) is left
    alone. A device whose two clients are not exactly as `device_clients` says (one missing,
    other roles or ACLs, such as the whole-subtree grant of before agents had their own
    certificate) is repaired: withdrawn, then granted again.
    """
    wanted, invalid = set(), []
    for device_id in active:
        try:
            validate_device_id(device_id)
        except InvalidDeviceId:
            invalid.append(device_id)
        else:
            wanted.add(device_id)
    grant, repair = [], []
    for device_id in sorted(wanted):
        expected = device_clients(device_id)
        present = [view.clients.get(client) for client in expected]
        if all(client is None for client in present):
            grant.append(device_id)
        elif any(
            client is None
            or client.roles != {role}
            or client.groups
            or view.roles.get(role) != acls
            for client, (role, acls) in zip(present, expected.values(), strict=True)
        ):
            repair.append(device_id)
    owned = {
        owner_of(name)
        for name, client in view.clients.items()
        if any(role.startswith(DEVICE_ROLE_PREFIX) for role in client.roles)
    } | {
        owner_of(role.removeprefix(DEVICE_ROLE_PREFIX))
        for role in view.roles
        if role.startswith(DEVICE_ROLE_PREFIX)
    }
    withdraw = sorted(owned - wanted - {CONTROL_PLANE_COMMON_NAME})
    return Plan(
        grant=tuple(grant),
        repair=tuple(repair),
        withdraw=tuple(withdraw),
        invalid=tuple(sorted(invalid)),
    )
