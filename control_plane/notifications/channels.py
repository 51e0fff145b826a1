"""Each tenant's notification channels and which alerts go to each.

A channel is a webhook (URL + a secret it signs with) or e-mail (recipients). It takes the alert
kinds it lists (none listed: every kind) at or above its minimum severity, opened and — unless
``on_clear`` is off — cleared. The webhook secret is made here, returned once by
:func:`create_channel` and never again: signing needs the secret itself (a hash could not sign),
so it is stored sealed with the settings' key (:mod:`~control_plane.notifications.secret_box`);
a copy of the database alone cannot forge this tenant's webhooks. Channel rows are readable only
through the tenant admin's routes, and the console offers delete-and-recreate as rotation.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy import RowMapping, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.alerts.rules import KINDS
from control_plane.devices.tables import tenants
from control_plane.notifications.secret_box import KEY_VARIABLE, box_of
from control_plane.notifications.settings import NotificationSettings
from control_plane.notifications.tables import notification_channels, notification_outbox
from control_plane.problems import DomainError
from control_plane.tenancy import TenantScope

ChannelKind = Literal["webhook", "email"]
Severity = Literal["warning", "critical"]
SEVERITY_RANK = {"warning": 0, "critical": 1}
#: How bad each alert kind is: critical ones mean sales or their record are at risk now.
SEVERITY: dict[str, Severity] = {
    "silent": "critical",
    "chain_broken": "critical",
    "record_refused": "critical",
    "crash_loop": "critical",
    "backlog_growing": "warning",
    "replication_lag": "warning",
    "printer": "warning",
    "certificate_expiring": "warning",
    "clock_skew": "warning",
    "low_stock": "warning",  # a store's item at or under its threshold (control_plane.stock)
    # the appliance is back on its good system and selling: the update needs a look, not the store
    "os_update_reverted": "warning",
}
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix that marks a secret, not one
MAX_RECIPIENTS = 20
_ADDRESS = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+$")


def severity_of(kind: str) -> Severity:
    """An alert kind's severity (a kind this table does not know is critical: look at it)."""
    return SEVERITY.get(kind, "critical")


class ChannelNotFound(DomainError):  # noqa: N818 - named for what was refused
    """No channel with that id in the caller's tenant."""

    status = HTTPStatus.NOT_FOUND
    reason = "channel_not_found"

    def __init__(self, channel_id: str) -> None:
        super().__init__(f"notification channel {channel_id!r} does not exist")


class ChannelRefused(DomainError):  # noqa: N818 - named for what was refused
    """A channel that could not deliver as asked; ``advice`` says what to change."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    reason = "channel_refused"

    def __init__(self, message: str, advice: str) -> None:
        super().__init__(message)
        self.advice = advice


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """What a tenant admin asks for; checked by :func:`create_channel`."""

    name: str
    kind: ChannelKind
    url: str | None = None
    recipients: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    min_severity: Severity = "warning"
    on_clear: bool = True


def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Refuse a URL the worker should not POST alerts to (not http(s); an internal address)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number, or past 65535, raises here
    except ValueError as err:
        raise ChannelRefused(f"{url!r} is not a URL ({err})", "give https://host/path") from err
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ChannelRefused(
            f"{url!r} is not an http(s) URL", "give the receiver's https://host/path"
        )
    if parts.username or parts.password:
        raise ChannelRefused(
            "a webhook URL carries no user or password",
            "receivers check the X-Storefleet-Signature header instead",
        )
    if allow_private:
        return
    host = parts.hostname
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        internal = host == "localhost" or host.endswith((".localhost", ".local", ".internal"))
    else:
        internal = not address.is_global
    if internal:
        raise ChannelRefused(
            f"{host} is an internal address: the control plane will not POST to it",
            "use the receiver's public name, or set STOREFLEET_CP_NOTIFY_WEBHOOK_ALLOW_PRIVATE=1 "
            "where receivers live on the control plane's own network",
        )


def _check(spec: ChannelSpec, settings: NotificationSettings) -> None:
    unknown = sorted(set(spec.kinds) - set(KINDS))
    if unknown:
        raise ChannelRefused(
            f"unknown alert kinds: {', '.join(unknown)}", f"choose from {', '.join(KINDS)}"
        )
    if spec.kind == "webhook":
        if not spec.url:
            raise ChannelRefused("a webhook channel needs a URL", "give url: https://…")
        check_webhook_url(spec.url, allow_private=settings.webhook_allow_private)
        if settings.secrets_key_text is None:
            raise ChannelRefused(
                "this control plane has no key to seal webhook secrets with",
                f"ask the platform's operator to set {KEY_VARIABLE} (32 or more random characters)",
            )
        return
    if not spec.recipients or len(spec.recipients) > MAX_RECIPIENTS:
        raise ChannelRefused(
            f"an e-mail channel needs 1 to {MAX_RECIPIENTS} recipients",
            "give recipients: a list of addresses (a mailing list for more people)",
        )
    bad = [address for address in spec.recipients if not _ADDRESS.match(address)]
    if bad:
        raise ChannelRefused(f"not e-mail addresses: {', '.join(bad)}", "write name@example.com")
    if not settings.email_ready:
        raise ChannelRefused(
            "this control plane has no SMTP relay configured",
            "ask the platform's operator to set STOREFLEET_CP_NOTIFY_SMTP_HOST (and _PORT, "
            "_USER, _PASSWORD, _FROM)",
        )


async def create_channel(
    engine: AsyncEngine,
    *,
    tenant_id: str,
    spec: ChannelSpec,
    created_by: str,
    settings: NotificationSettings,
    now_ms: int,
) -> tuple[RowMapping, str | None]:
    """The new channel's row and, for a webhook, its secret (shown this once only)."""
    _check(spec, settings)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32) if spec.kind == "webhook" else None
    channel_id = uuid.uuid4().hex
    async with engine.begin() as conn:
        if (
            await conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))
        ).first() is None:
            raise ChannelRefused(f"tenant {tenant_id!r} does not exist", "name an existing tenant")
        await conn.execute(
            insert(notification_channels).values(
                id=channel_id,
                tenant_id=tenant_id,
                name=spec.name,
                kind=spec.kind,
                url=spec.url if spec.kind == "webhook" else None,
                secret=_sealed(settings, secret, channel_id),
                recipients=",".join(spec.recipients) if spec.kind == "email" else None,
                kinds=",".join(sorted(set(spec.kinds))),
                min_severity=spec.min_severity,
                on_clear=spec.on_clear,
                created_at=now_ms,
                created_by=created_by[:254],
            )
        )
        row = await _row(conn, channel_id)
    return row, secret


def _sealed(settings: NotificationSettings, secret: str | None, channel_id: str) -> str | None:
    box = box_of(settings.secrets_key_text)
    if secret is None or box is None:  # no secret, or an e-mail channel (_check saw to the key)
        return None
    return box.seal(secret, channel_id=channel_id)


async def _row(conn: AsyncConnection, channel_id: str) -> RowMapping:
    query = select(notification_channels).where(notification_channels.c.id == channel_id)
    return (await conn.execute(query)).mappings().one()


async def list_channels(engine: AsyncEngine, *, scope: TenantScope) -> Sequence[RowMapping]:
    """The channels in scope, oldest first."""
    query = (
        select(notification_channels)
        .where(scope.where(notification_channels.c.tenant_id))
        .order_by(notification_channels.c.created_at, notification_channels.c.id)
    )
    async with engine.connect() as conn:
        return (await conn.execute(query)).mappings().all()


async def get_channel(engine: AsyncEngine, *, scope: TenantScope, channel_id: str) -> RowMapping:
    """One channel in scope; another tenant's answers as a missing one."""
    query = select(notification_channels).where(
        notification_channels.c.id == channel_id, scope.where(notification_channels.c.tenant_id)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise ChannelNotFound(channel_id)
    return row


async def delete_channel(engine: AsyncEngine, *, scope: TenantScope, channel_id: str) -> None:
    """Remove a channel with its deliveries (pending ones are not sent any more)."""
    async with engine.begin() as conn:
        found = await conn.execute(
            delete(notification_channels).where(
                notification_channels.c.id == channel_id,
                scope.where(notification_channels.c.tenant_id),
            )
        )
        if found.rowcount == 0:
            raise ChannelNotFound(channel_id)
        await conn.execute(
            delete(notification_outbox).where(notification_outbox.c.channel_id == channel_id)
        )


def wants(channel: RowMapping, *, kind: str, event: str) -> bool:
    """Whether ``channel`` takes the ``event`` (opened, cleared) of an alert of ``kind``."""
    if event == "cleared" and not channel["on_clear"]:
        return False
    kinds = [k for k in str(channel["kinds"] or "").split(",") if k]
    if kinds and kind not in kinds:
        return False
    return SEVERITY_RANK[severity_of(kind)] >= SEVERITY_RANK.get(str(channel["min_severity"]), 0)
