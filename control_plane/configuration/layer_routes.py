"""Each configuration layer as the API addresses it: one table, and the routes made from it.

Why: every operation on a layer's settings (read, set, delete, preview, history, rollback) is the
same for the four layers but for its URL, the name of its id, the "not found" it answers, the
permission that changes it and a line of documentation. Written out per layer that was 24
near-identical routes in two routers; now ``router.py`` and ``history_router.py`` write each
operation once and add it for every layer in :data:`LAYER_ROUTES` (as ``staged_router.py``
adds publishing a key through waves).

How it works: an operation is an endpoint that reads its layer from the :class:`LayerRoute`
it was made for and annotates its id as ``Target`` and its writer as ``Writer``.
:func:`add_layer_route` gives those two names their layer's types — the id a path parameter
named as before (``tenant_id``, ``group_id``, ``store_id``, ``device_id``), the writer the
layer's permission — and registers the endpoint under the operation's old name and description.
URLs, operation ids and the OpenAPI document stay what clients already use.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration.errors import GroupNotFound, SupportAccessRefused
from control_plane.configuration.layers import Layer
from control_plane.dependencies import get_engine
from control_plane.devices.errors import DeviceNotFound, StoreNotFound, TenantNotFound
from control_plane.operators.policy import Action, ConfigWrite, TenantConfigWrite, refusal
from control_plane.operators.principal import Principal
from control_plane.problems import DomainError, problem_responses
from protocols.topics import DEVICE_ID_PATTERN

Engine = Annotated[AsyncEngine, Depends(get_engine)]
Id = Annotated[str, Path(pattern=DEVICE_ID_PATTERN.pattern, description="the layer's id")]
#: What a layer operation annotates its id and its writer with; :func:`add_layer_route` turns
#: them into the layer's own path parameter and permission.
Target = Id
Writer = ConfigWrite


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerRoute:
    """How one layer is addressed, guarded and described in the API."""

    layer: Layer
    prefix: str  # the layer's URL under /api/config, e.g. "/tenants/{tenant_id}"
    id_name: str  # its path parameter, e.g. "tenant_id"
    id_description: str
    name: str  # the word in its operations' names: tenant_settings, set_tenant_setting …
    not_found: type[DomainError]
    writer: Any  # the permission that changes the layer (an ``Annotated`` principal)
    docs: Mapping[str, str]  # operation -> its description


LAYER_ROUTES = (
    LayerRoute(
        layer=Layer.TENANT,
        prefix="/tenants/{tenant_id}",
        id_name="tenant_id",
        id_description="the layer's id",
        name="tenant",
        not_found=TenantNotFound,
        writer=TenantConfigWrite,
        docs={
            "read": "The keys the tenant layer sets.",
            "set": "Set a key for every store of the tenant (a group, store or register may "
            "override it).",
            "delete": "Delete a tenant key: it falls back to the platform default.",
            "preview": "Which registers of the tenant a change would change and how, or break; "
            "nothing stored.",
            "history": "The tenant layer's versions, newest first.",
            "rollback": "Restore the tenant layer to an earlier version, as a new version.",
            "stage": "Publish a key for every store of the tenant through waves: a canary first, "
            "the next wave only when the gates pass, the registers reached rolled back on a halt.",
        },
    ),
    LayerRoute(
        layer=Layer.GROUP,
        prefix="/groups/{group_id}",
        id_name="group_id",
        id_description="the layer's id",
        name="group",
        not_found=GroupNotFound,
        writer=TenantConfigWrite,
        docs={
            "read": "The keys the group layer sets.",
            "set": "Set a key for every store of the group.",
            "delete": "Delete a group key: it falls back to the tenant's.",
            "preview": "Which registers of the group's stores a change would change and how; "
            "nothing stored.",
            "history": "The group layer's versions, newest first.",
            "rollback": "Restore the group layer to an earlier version, as a new version.",
            "stage": "Publish a key for every store of the group through waves (a canary first).",
        },
    ),
    LayerRoute(
        layer=Layer.STORE,
        prefix="/stores/{store_id}",
        id_name="store_id",
        id_description="the layer's id",
        name="store",
        not_found=StoreNotFound,
        writer=ConfigWrite,
        docs={
            "read": "The keys the store layer sets (``staff`` with its PIN hashes left out).",
            "set": "Set a key for every register of the store.",
            "delete": "Delete a store key: it falls back to its groups' or the tenant's.",
            "preview": "Which registers of the store a change would change and how; nothing "
            "stored.",
            "history": "The store layer's versions, newest first (staff without PIN hashes), a "
            'page at a time\n(``Link: <…>; rel="next"`` while older ones remain).',
            "rollback": "Restore the store layer to an earlier version, as a new version (its "
            "staff stays).",
            "stage": "Publish a key for every register of the store through waves (a canary "
            "first).",
        },
    ),
    LayerRoute(
        layer=Layer.REGISTER,
        prefix="/devices/{device_id}",
        id_name="device_id",
        id_description="the device's id",
        name="register",
        not_found=DeviceNotFound,
        writer=ConfigWrite,
        docs={
            "read": "The keys the register layer sets.",
            "set": "Set a key for this register only.",
            "delete": "Delete a register key: it falls back to the store's.",
            "preview": "How a change to this register's layer would change its document; "
            "nothing stored.",
            "history": "The register layer's versions, newest first.",
            "rollback": "Restore the register layer to an earlier version, as a new version.",
            "stage": "Publish a key for this register through waves: it is its own canary.",
        },
    ),
)


def wake_publisher(request: Request) -> None:
    """A change was stored: the configuration link publishes the new documents now."""
    link = getattr(request.app.state, "config_link", None)
    if link is not None:
        link.poke()


def add_layer_route(
    router: APIRouter,
    route: LayerRoute,
    endpoint: Callable[..., Any],
    *,
    operation: str,
    method: str,
    path: str,
    name: str,
    refusals: Sequence[type[DomainError]] = (),
    status_code: int | None = None,
) -> None:
    """Register ``endpoint`` as ``method`` ``route.prefix + path`` for ``route``'s layer.

    ``Target`` in its annotations becomes the layer's id path parameter, ``Writer`` the layer's
    permission; ``name`` is the operation's id as clients know it, ``operation`` the key of its
    description in ``route.docs``.
    """
    target = Annotated[
        str,
        Path(
            alias=route.id_name,
            title=route.id_name.replace("_", " ").title(),
            pattern=DEVICE_ID_PATTERN.pattern,
            description=route.id_description,
        ),
    ]
    hints = typing.get_type_hints(
        endpoint, localns={"Target": target, "Writer": route.writer}, include_extras=True
    )
    signature = inspect.signature(endpoint)
    endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(annotation=hints[p.name]) for p in signature.parameters.values()],
        return_annotation=hints["return"],
    )
    router.add_api_route(
        route.prefix + path,
        endpoint,
        methods=[method],
        name=name,
        description=route.docs[operation],
        responses=problem_responses(route.not_found, *refusals),
        status_code=status_code,
    )


#: the key that opens SSH into a store's appliances (the document's ``support`` section)
SUPPORT_KEY = "support"


def guard_support_access(principal: Principal, keys: Iterable[str]) -> None:
    """Refuse a change to ``support`` by anyone who may not change the tenant's configuration:
    an operator configures a store, a tenant admin decides who may log into its boxes."""
    if SUPPORT_KEY in keys:
        why = refusal(principal, Action.TENANT_CONFIG_WRITE)
        if why is not None:
            raise SupportAccessRefused(key=SUPPORT_KEY, why=why)
