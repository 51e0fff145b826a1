"""How a notification leaves: a signed webhook POST, or an e-mail through the SMTP relay.

Webhook signature (what a receiver checks): the request carries ``X-Storefleet-Timestamp`` (Unix
seconds when this attempt was sent) and ``X-Storefleet-Signature: v1=<hex>``, the HMAC-SHA256
under the channel's secret of ``"<timestamp>.<raw body>"``. A receiver recomputes it over the
bytes it got, compares in constant time, and refuses a timestamp more than five minutes from its
clock (a replayed request). ``X-Storefleet-Delivery`` is the delivery id, the same on every
retry: delivery is at least once, so a receiver drops an id it has seen.

Each transport raises :class:`Undelivered` with ``retryable`` set: connection errors, timeouts,
5xx (and 408/429) answers and SMTP 4xx are worth another attempt; any other answer is not.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import smtplib
import socket
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import urlsplit

import httpx

from control_plane.notifications.settings import NotificationSettings

SIGNATURE_HEADER = "X-Storefleet-Signature"
TIMESTAMP_HEADER = "X-Storefleet-Timestamp"
DELIVERY_HEADER = "X-Storefleet-Delivery"
#: Client errors that say "later", not "never".
_RETRYABLE_4XX = frozenset({408, 429})


class Undelivered(Exception):  # noqa: N818 - named for what happened
    """An attempt that did not deliver; ``retryable``: whether another attempt may."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Storefleet-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    """What a receiver does (used by the tests and shown in the docs)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


async def _refuse_internal(url: str) -> None:
    """A name that now resolves to an internal address is not POSTed to (SSRF)."""
    host = urlsplit(url).hostname or ""
    port = urlsplit(url).port or 443
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise Undelivered(f"{host} does not resolve: {err}", retryable=True) from err
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            raise Undelivered(
                f"{host} resolves to the internal address {address}; the control plane will not "
                "POST there (set STOREFLEET_CP_NOTIFY_WEBHOOK_ALLOW_PRIVATE=1 if it should)",
                retryable=False,
            )


async def post_webhook(
    client: httpx.AsyncClient,
    *,
    url: str,
    secret: str,
    body: str,
    delivery_id: str,
    timestamp: int,
    settings: NotificationSettings,
) -> int:
    """POST ``body`` signed; the receiver's 2xx status, else :class:`Undelivered`."""
    if not settings.webhook_allow_private:
        await _refuse_internal(url)
    data = body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "storefleet-notifier/1",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, data),
        DELIVERY_HEADER: delivery_id,
    }
    try:
        response = await client.post(
            url, content=data, headers=headers, timeout=settings.webhook_timeout_s
        )
    except httpx.TimeoutException as err:
        raise Undelivered(
            f"no answer within {settings.webhook_timeout_s} s", retryable=True
        ) from err
    except httpx.HTTPError as err:
        raise Undelivered(f"{type(err).__name__}: {err}", retryable=True) from err
    status = response.status_code
    if 200 <= status < 300:
        return status
    retryable = status >= 500 or status in _RETRYABLE_4XX
    raise Undelivered(f"the receiver answered {status}", retryable=retryable)


def email_message(
    body: str, *, sender: str, recipients: tuple[str, ...], delivery_id: str
) -> EmailMessage:
    """The e-mail of a notification: what happened, where, and what to do, in plain text."""
    notice: dict[str, Any] = json.loads(body)
    alert: dict[str, Any] = notice["alert"]
    event = str(notice["event"])
    kind = str(alert["kind"]).replace("_", " ")
    what = {"opened": "opened", "cleared": "cleared", "test": "test"}.get(event, event)
    message = EmailMessage()
    prefix = "[storefleet test] " if event == "test" else "[storefleet] "
    message["Subject"] = (
        f"{prefix}{alert['severity']}: {kind} {what} on {alert['device_id']} ({alert['store_id']})"
    )
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = make_msgid(idstring=delivery_id)
    message["X-Storefleet-Delivery"] = delivery_id
    lines = [
        f"Alert: {kind} ({alert['severity']}), {what}",
        f"Device: {alert['device_id']}",
        f"Store: {alert['store_id']}",
        f"Tenant: {alert['tenant_id']}",
        f"What: {alert['detail']}",
        "",
        "Open the console's Alerts page to acknowledge it or see the device's history;"
        if event != "cleared"
        else "The condition ended by itself; nothing is left to do.",
        "",
        f"Alert id {alert['id']}, delivery {delivery_id}.",
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


def _send(settings: NotificationSettings, message: EmailMessage) -> None:
    """smtplib is blocking: run in a thread by :func:`send_email`."""
    host = settings.smtp_host or ""
    try:
        with smtplib.SMTP(host, settings.smtp_port, timeout=settings.smtp_timeout_s) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                password = (
                    settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                )
                smtp.login(settings.smtp_user, password)
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as err:
        codes = sorted({code for code, _ in err.recipients.values()})
        raise Undelivered(
            f"the relay refused every recipient ({codes})", retryable=all(c < 500 for c in codes)
        ) from err
    except smtplib.SMTPResponseException as err:
        raise Undelivered(
            f"the relay answered {err.smtp_code}: {err.smtp_error!r}", retryable=err.smtp_code < 500
        ) from err
    except (smtplib.SMTPException, OSError) as err:
        raise Undelivered(f"{type(err).__name__}: {err}", retryable=True) from err


async def send_email(
    settings: NotificationSettings, *, body: str, recipients: tuple[str, ...], delivery_id: str
) -> None:
    """Send the notification's e-mail through the configured relay."""
    if not settings.email_ready:
        raise Undelivered("no SMTP relay: set STOREFLEET_CP_NOTIFY_SMTP_HOST", retryable=True)
    message = email_message(
        body, sender=settings.smtp_from, recipients=recipients, delivery_id=delivery_id
    )
    await send_message(settings, message)


async def send_message(settings: NotificationSettings, message: EmailMessage) -> None:
    """Send any e-mail through the configured relay (alerts; customers' digital receipts)."""
    if not settings.email_ready:
        raise Undelivered("no SMTP relay: set STOREFLEET_CP_NOTIFY_SMTP_HOST", retryable=True)
    await asyncio.to_thread(_send, settings, message)
