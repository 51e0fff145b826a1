"""The notifier: the supervised task that empties the outbox.

How it works: every ``poll_s`` :meth:`Notifier.deliver_due` claims up to ``batch`` due
deliveries (``outbox.claim``: a lease, so another instance never sends the same row at the same
time), sends them side by side in a ``TaskGroup`` and records each outcome. A retryable failure
waits the ``attempts``-th delay of the one :class:`mqttlink.backoff.Backoff` (full jitter,
doubling to ``backoff_max``) in the row's ``next_at`` — the wait is durable, so a restart
neither forgets nor hurries it — and after ``max_attempts`` the row is marked failed. Every
attempt is counted in ``storefleet_notification_deliveries_total{channel,outcome}`` (sent,
retried, failed) and logged with what to do. A pass that fails as a whole is counted and tried
again next time; the task itself is run by ``control_plane.supervision``. Sent and failed rows
are kept ``keep_days`` (the console's deliveries list reads them), then pruned.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import httpx
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.notifications import outbox, secret_box, transports
from control_plane.notifications.outbox import Claimed
from control_plane.notifications.settings import NotificationSettings
from mqttlink.backoff import Backoff

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "storefleet_notification_deliveries",
    "Notification delivery attempts, by channel kind and outcome (sent, retried, failed)",
    ["channel", "outcome"],
)
PASSES_FAILED = Counter(
    "storefleet_notification_passes_failed", "Outbox passes that failed as a whole (retried)"
)


#: How often finished deliveries past ``keep_days`` are deleted.
PRUNE_EVERY_S = 3600.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def retry_delay(settings: NotificationSettings, attempts: int) -> float:
    """The wait (seconds) after the ``attempts``-th failed attempt: the one Backoff's sequence."""
    backoff = Backoff.from_settings(settings)
    delay = 0.0
    for _ in range(max(1, attempts)):
        delay = backoff.next_delay()
    return delay


class Notifier:
    """Delivers the outbox; one per control-plane instance (several instances: fine)."""

    def __init__(self, *, engine: AsyncEngine, settings: NotificationSettings) -> None:
        self._engine = engine
        self._settings = settings
        self.owner = f"notifier-{uuid.uuid4().hex[:12]}"
        self._pruned_at: float | None = None
        self._box = secret_box.box_of(settings.secrets_key_text)

    async def run(self) -> None:
        """Seal any webhook secret still stored in clear, then deliver every ``poll_s`` until
        cancelled."""
        if self._box is not None:
            sealed = await secret_box.seal_clear_secrets(self._engine, self._box)
            if sealed:
                log.info("notifications: sealed %d webhook secret(s) stored in clear", sealed)
        async with httpx.AsyncClient(follow_redirects=False) as client:
            while True:
                try:
                    await self.deliver_due(client)
                except Exception:
                    PASSES_FAILED.inc()
                    log.exception(
                        "notifications: an outbox pass failed (counted in "
                        "storefleet_notification_passes_failed_total); nothing is lost, the "
                        "next pass in %.0f s retries; if it repeats, check the database",
                        self._settings.poll_s,
                    )
                await asyncio.sleep(self._settings.poll_s)

    async def deliver_due(self, client: httpx.AsyncClient) -> int:
        """One pass: claim the due deliveries, send them, record each; how many were tried.

        Once an hour it also forgets deliveries finished more than ``keep_days`` ago.
        """
        if self._pruned_at is None or time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
            self._pruned_at = time.monotonic()
            keep_ms = self._settings.keep_days * 86_400_000
            await outbox.prune(self._engine, before_ms=_now_ms() - keep_ms)
        claimed = await outbox.claim(
            self._engine,
            owner=self.owner,
            now_ms=_now_ms(),
            lease_ms=int(self._settings.lease_s * 1000),
            limit=self._settings.batch,
        )
        if claimed:
            async with asyncio.TaskGroup() as group:
                for delivery in claimed:
                    group.create_task(self._deliver(client, delivery), name=f"notify-{delivery.id}")
        return len(claimed)

    async def _deliver(self, client: httpx.AsyncClient, delivery: Claimed) -> None:
        try:
            await self._send(client, delivery)
        except transports.Undelivered as err:
            await self._failed(delivery, err)
            return
        except Exception as err:  # a defect in one delivery must not stop the others
            log.exception("notifications: delivery %s broke; it will be retried", delivery.id)
            await self._failed(delivery, transports.Undelivered(repr(err), retryable=True))
            return
        if await outbox.finish(
            self._engine,
            delivery_id=delivery.id,
            owner=self.owner,
            outcome="sent",
            now_ms=_now_ms(),
        ):
            DELIVERIES.labels(delivery.kind, "sent").inc()
            log.info("notification %s sent to %s channel %s", delivery.id, delivery.kind,
                     delivery.channel_id)  # fmt: skip
        else:
            self._lease_lost(delivery)

    async def _send(self, client: httpx.AsyncClient, delivery: Claimed) -> None:
        if delivery.kind == "webhook":
            if not delivery.url or not delivery.secret:
                raise transports.Undelivered("the channel has no URL or secret", retryable=False)
            try:
                secret = secret_box.open_stored(
                    self._box, delivery.secret, channel_id=delivery.channel_id
                )
            except secret_box.SecretUnavailable as err:
                raise transports.Undelivered(str(err), retryable=False) from err
            await transports.post_webhook(
                client,
                url=delivery.url,
                secret=secret,
                body=delivery.payload,
                delivery_id=delivery.id,
                timestamp=int(time.time()),
                settings=self._settings,
            )
        elif delivery.kind == "email":
            await transports.send_email(
                self._settings,
                body=delivery.payload,
                recipients=delivery.recipients,
                delivery_id=delivery.id,
            )
        else:
            raise transports.Undelivered(f"unknown channel kind {delivery.kind!r}", retryable=False)

    async def _failed(self, delivery: Claimed, err: transports.Undelivered) -> None:
        attempt = delivery.attempts + 1
        now = _now_ms()
        if err.retryable and attempt < self._settings.max_attempts:
            wait = retry_delay(self._settings, attempt)
            recorded = await outbox.finish(
                self._engine,
                delivery_id=delivery.id,
                owner=self.owner,
                outcome="retry",
                now_ms=now,
                error=str(err),
                retry_at=now + int(wait * 1000),
            )
            if recorded:
                DELIVERIES.labels(delivery.kind, "retried").inc()
                log.warning(
                    "notification %s to %s channel %s not delivered (%s); attempt %d of %d, "
                    "retrying in %.1f s",
                    delivery.id, delivery.kind, delivery.channel_id, err, attempt,
                    self._settings.max_attempts, wait,
                )  # fmt: skip
            else:
                self._lease_lost(delivery)
            return
        recorded = await outbox.finish(
            self._engine,
            delivery_id=delivery.id,
            owner=self.owner,
            outcome="failed",
            now_ms=now,
            error=str(err),
        )
        if not recorded:
            self._lease_lost(delivery)
            return
        DELIVERIES.labels(delivery.kind, "failed").inc()
        log.error(
            "notification %s to %s channel %s failed for good after %d attempt(s): %s; fix the "
            "channel (URL, receiver, recipients) in the console's Alerts page and send a test",
            delivery.id, delivery.kind, delivery.channel_id, attempt, err,
        )  # fmt: skip

    def _lease_lost(self, delivery: Claimed) -> None:
        log.warning(
            "notification %s: its lease ran out before the outcome was recorded (another "
            "instance may send it again; receivers drop the repeated delivery id); raise "
            "STOREFLEET_CP_NOTIFY_LEASE_S above the webhook and SMTP timeouts",
            delivery.id,
        )
