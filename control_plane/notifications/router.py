"""Notification channels over HTTP: list, create (the webhook secret shown once), delete, test.

Every route needs ``notifications:manage`` (tenant admins in their tenant, platform admins in
any): a channel's URL and recipients say where a tenant's alerts go, so viewers and operators
neither change nor read them. Another tenant's channel answers the 404 of a missing one; a
platform admin names the tenant in the body.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import get_engine
from control_plane.inputs import Identifier, RefPath, Utf8
from control_plane.notifications import channels, outbox
from control_plane.notifications.channels import (
    ChannelKind,
    ChannelNotFound,
    ChannelRefused,
    ChannelSpec,
    Severity,
)
from control_plane.notifications.settings import NotificationSettings
from control_plane.operators.errors import Forbidden
from control_plane.operators.policy import Action, NotificationsManage, tenant_scope
from control_plane.problems import problem_responses
from control_plane.tenancy import TenantScope
from protocols.limits import PRINTABLE_PATTERN

router = APIRouter(prefix="/api/notifications", tags=["notifications"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]


def notification_settings(request: Request) -> NotificationSettings:
    """The app's notification settings (read from the environment once)."""
    settings = getattr(request.app.state, "notification_settings", None)
    if settings is None:
        settings = NotificationSettings()
        request.app.state.notification_settings = settings
    return settings


Settings = Annotated[NotificationSettings, Depends(notification_settings)]


def _text(most: int) -> StringConstraints:
    """Printable text of at most ``most`` characters (no NUL: what both stores keep)."""
    return StringConstraints(min_length=1, max_length=most, pattern=PRINTABLE_PATTERN)


ChannelName = Annotated[str, _text(100), Utf8]
WebhookUrl = Annotated[str, _text(2000), Utf8]
Recipient = Annotated[str, _text(254), Utf8]
AlertKind = Annotated[str, _text(32), Utf8]


class ChannelIn(BaseModel):
    """A new channel: a webhook (``url``) or e-mail (``recipients``), and what it takes."""

    name: ChannelName
    kind: ChannelKind
    tenant_id: Identifier | None = Field(default=None, description="platform admins: the tenant")
    url: WebhookUrl | None = Field(default=None, description="webhook: https://…")
    recipients: list[Recipient] = Field(default_factory=list, max_length=channels.MAX_RECIPIENTS)
    kinds: list[AlertKind] = Field(
        default_factory=list, max_length=20, description="alert kinds sent; empty: every kind"
    )
    min_severity: Severity = "warning"
    on_clear: bool = Field(default=True, description="also tell when an alert clears")


class ChannelOut(BaseModel):
    """A channel as listed: never its secret."""

    id: str
    tenant_id: str
    name: str
    kind: str
    url: str | None
    recipients: list[str]
    kinds: list[str]
    min_severity: str
    on_clear: bool
    created_at: int
    created_by: str


class ChannelCreated(ChannelOut):
    """The new channel and, for a webhook, the secret it signs with: shown this once."""

    secret: str | None


class QueuedTest(BaseModel):
    """A test delivery waiting in the outbox; its outcome shows in the channel's deliveries."""

    delivery_id: str


class DeliveryOut(BaseModel):
    """One delivery of a channel: pending, sent or failed, after how many attempts, and why."""

    id: str
    alert_id: str
    event: str
    status: str
    attempts: int
    next_at: int
    last_error: str | None
    created_at: int
    done_at: int | None


def _out(row: RowMapping) -> dict[str, object]:
    data = {key: row[key] for key in ChannelOut.model_fields if key in row}
    data["recipients"] = [a for a in str(row["recipients"] or "").split(",") if a]
    data["kinds"] = [k for k in str(row["kinds"] or "").split(",") if k]
    data["on_clear"] = bool(row["on_clear"])
    return data


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@router.get("/channels", responses=problem_responses())
async def list_channels(engine: Engine, principal: NotificationsManage) -> list[ChannelOut]:
    """The tenant's channels (a platform admin's: every tenant's), without secrets."""
    rows = await channels.list_channels(engine, scope=TenantScope.of(principal))
    return [ChannelOut.model_validate(_out(row)) for row in rows]


@router.post(
    "/channels",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(ChannelRefused, Forbidden),
)
async def create_channel(
    body: ChannelIn, engine: Engine, principal: NotificationsManage, settings: Settings
) -> ChannelCreated:
    """Add a channel; a webhook's answer carries its signing secret, shown this once only."""
    tenant_id = tenant_scope(principal, body.tenant_id, action=Action.NOTIFICATIONS_MANAGE)
    if tenant_id is None:
        raise ChannelRefused(
            "a channel belongs to one tenant", "name it: tenant_id (platform admins)"
        )
    row, secret = await channels.create_channel(
        engine,
        tenant_id=tenant_id,
        spec=ChannelSpec(
            name=body.name,
            kind=body.kind,
            url=body.url,
            recipients=tuple(body.recipients),
            kinds=tuple(body.kinds),
            min_severity=body.min_severity,
            on_clear=body.on_clear,
        ),
        created_by=principal.email,
        settings=settings,
        now_ms=_now_ms(),
    )
    return ChannelCreated.model_validate({**_out(row), "secret": secret})


@router.delete(
    "/channels/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(ChannelNotFound),
)
async def delete_channel(
    channel_id: RefPath, engine: Engine, principal: NotificationsManage
) -> Response:
    """Remove a channel; its pending deliveries are dropped with it."""
    await channels.delete_channel(engine, scope=TenantScope.of(principal), channel_id=channel_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/channels/{channel_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(ChannelNotFound),
)
async def send_test(
    channel_id: RefPath, engine: Engine, principal: NotificationsManage
) -> QueuedTest:
    """Queue a test notification to the channel (delivered, signed and retried like any)."""
    row = await channels.get_channel(engine, scope=TenantScope.of(principal), channel_id=channel_id)
    return QueuedTest(delivery_id=await outbox.enqueue_test(engine, channel=row, now_ms=_now_ms()))


@router.get("/channels/{channel_id}/deliveries", responses=problem_responses(ChannelNotFound))
async def list_deliveries(
    channel_id: RefPath, engine: Engine, principal: NotificationsManage
) -> list[DeliveryOut]:
    """The channel's newest deliveries: status, attempts and the last error."""
    scope = TenantScope.of(principal)
    await channels.get_channel(engine, scope=scope, channel_id=channel_id)
    rows = await outbox.list_deliveries(engine, scope=scope, channel_id=channel_id)
    return [DeliveryOut.model_validate(dict(row)) for row in rows]
