"""The receipt mailer: the supervised task that e-mails digital receipts from the outbox.

How it works: every ``receipts_poll_s`` :meth:`ReceiptMailer.deliver_due` leases due receipts
(:func:`control_plane.customers.receipts.claim`) and handles each: the customer must still have a
profile (not erased), have consented to e-mailed receipts and have an e-mail address — otherwise
the receipt is ``skipped``, with why. Only then is the profile opened, the sale read from the
journal (its stored body) and the receipt sent over SMTP through the notifications' transport
(``transports.send_message``). A retryable failure waits the notifier's backoff
(``notifications.worker.retry_delay``) in the row's ``next_at``; after ``max_attempts`` it is
``failed``. Each outcome is counted in ``storefleet_customer_receipts_total{outcome}`` and logged
with the receipt and customer ids — never the address.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.customers import receipts
from control_plane.customers.keyring import Keyring
from control_plane.customers.receipts import DueReceipt
from control_plane.customers.service import profile_of
from control_plane.customers.settings import CustomerSettings
from control_plane.customers.tables import customers
from control_plane.devices.tables import stores
from control_plane.ingest.tables import journal
from control_plane.notifications import transports
from control_plane.notifications.settings import NotificationSettings
from control_plane.notifications.worker import retry_delay
from control_plane.sales.tables import sales
from protocols.currency import format_minor

log = logging.getLogger(__name__)

RECEIPTS = Counter(
    "storefleet_customer_receipts",
    "Digital receipt attempts, by outcome (sent, retried, failed, skipped)",
    ["outcome"],
)
PASSES_FAILED = Counter(
    "storefleet_customer_receipt_passes_failed", "Receipt mailer passes that failed (retried)"
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def receipt_message(
    body: dict[str, Any], *, store: str, sender: str, to: str, receipt_id: str
) -> EmailMessage:
    """The e-mail of one sale: store, receipt number, lines, total, tenders, in plain text."""
    currency = str(body["currency"])
    lines = [f"Receipt {body['receipt_no']} from {store}", ""]
    for line in body["lines"]:
        amount = format_minor(int(line["amount_minor"]), currency)
        lines.append(f"{line['quantity']} × {line['description'] or line['sku']}  {amount}")
    lines += ["", f"Total {currency} {format_minor(int(body['total_minor']), currency)}"]
    for tender in body.get("tenders", []):
        lines.append(
            f"Paid ({tender['kind']}) {format_minor(int(tender['amount_minor']), currency)}"
        )
    if int(body.get("change_minor", 0)):
        lines.append(f"Change {format_minor(int(body['change_minor']), currency)}")
    lines += ["", f"Sale {body['sale_id']}. You receive receipts by e-mail because you asked to;",
              "ask the store to stop them at any time."]  # fmt: skip
    message = EmailMessage()
    message["Subject"] = f"Your receipt from {store} (no. {body['receipt_no']})"
    message["From"] = sender
    message["To"] = to
    message["Message-ID"] = make_msgid(idstring=receipt_id)
    message["X-Storefleet-Receipt"] = receipt_id
    message.set_content("\n".join(lines) + "\n")
    return message


class ReceiptMailer:
    """E-mails the receipts outbox; one per control-plane instance (several: fine)."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        keyring: Keyring,
        settings: CustomerSettings,
        smtp: NotificationSettings,
    ) -> None:
        self._engine = engine
        self._keyring = keyring
        self._settings = settings
        self._smtp = smtp
        self.owner = f"receipts-{uuid.uuid4().hex[:12]}"

    async def run(self) -> None:
        """Deliver every ``receipts_poll_s`` until cancelled."""
        while True:
            try:
                await self.deliver_due()
            except Exception:
                PASSES_FAILED.inc()
                log.exception(
                    "receipts: a pass failed (counted in storefleet_customer_receipt_passes_"
                    "failed_total); nothing is lost, the next pass retries; if it repeats, check "
                    "the database"
                )
            await asyncio.sleep(self._settings.receipts_poll_s)

    async def deliver_due(self) -> int:
        """One pass: lease the due receipts, handle each; how many were handled."""
        due = await receipts.claim(
            self._engine,
            owner=self.owner,
            now_ms=_now_ms(),
            lease_ms=int(self._smtp.lease_s * 1000),
            limit=self._smtp.batch,
        )
        for receipt in due:  # one SMTP connection at a time: a relay limits its senders
            await self._handle(receipt)
        return len(due)

    async def _handle(self, receipt: DueReceipt) -> None:
        try:
            message, skipped = await self._message(receipt)
            if message is None:
                await self._finish(receipt, "skipped", error=skipped)
                return
            await transports.send_message(self._smtp, message)
        except transports.Undelivered as err:
            await self._failed(receipt, err)
            return
        except Exception as err:  # a defect in one receipt must not stop the others
            log.exception("receipts: receipt %s broke; it will be retried", receipt.id)
            await self._failed(receipt, transports.Undelivered(repr(err), retryable=True))
            return
        await self._finish(receipt, "sent")

    async def _message(self, receipt: DueReceipt) -> tuple[EmailMessage | None, str]:
        """The e-mail to send, or None and why the receipt is skipped."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(customers).where(
                        customers.c.id == receipt.customer_id,
                        customers.c.tenant_id == receipt.tenant_id,
                    )
                )
            ).first()
            if row is None:
                return None, "no such customer in the sale's tenant"
            if row.erased_at is not None:
                return None, "the customer was erased"
            if not row.receipt_consent:
                return None, "the customer has not asked for e-mailed receipts"
            profile = await profile_of(conn, self._keyring, row)
            if not profile["email"]:
                return None, "the customer has no e-mail address"
            record = (
                await conn.execute(
                    select(journal.c.body, stores.c.name)
                    .join(
                        sales,
                        (sales.c.device_id == journal.c.device_id) & (sales.c.seq == journal.c.seq),
                    )
                    .join(stores, stores.c.id == sales.c.store_id)
                    .where(journal.c.device_id == receipt.device_id, journal.c.seq == receipt.seq)
                )
            ).first()
        if record is None:
            return None, "the sale's journal record is not stored"
        body: dict[str, Any] = json.loads(record.body)
        message = receipt_message(
            body,
            store=str(record.name),
            sender=self._settings.receipts_from,
            to=str(profile["email"]),
            receipt_id=receipt.id,
        )
        return message, ""

    async def _finish(
        self, receipt: DueReceipt, outcome: receipts.Outcome, *, error: str | None = None
    ) -> None:
        recorded = await receipts.finish(
            self._engine,
            receipt_id=receipt.id,
            owner=self.owner,
            outcome=outcome,
            now_ms=_now_ms(),
            error=error,
        )
        if recorded:
            RECEIPTS.labels(outcome).inc()
            log.info("receipt %s for customer %s: %s%s", receipt.id, receipt.customer_id,
                     outcome, f" ({error})" if error else "")  # fmt: skip

    async def _failed(self, receipt: DueReceipt, err: transports.Undelivered) -> None:
        attempt = receipt.attempts + 1
        now = _now_ms()
        if err.retryable and attempt < self._smtp.max_attempts:
            wait = retry_delay(self._smtp, attempt)
            if await receipts.finish(
                self._engine,
                receipt_id=receipt.id,
                owner=self.owner,
                outcome="retry",
                now_ms=now,
                error=str(err),
                retry_at=now + int(wait * 1000),
            ):
                RECEIPTS.labels("retried").inc()
                log.warning(
                    "receipt %s not sent (%s); attempt %d of %d, retrying in %.1f s",
                    receipt.id, err, attempt, self._smtp.max_attempts, wait,
                )  # fmt: skip
            return
        if await receipts.finish(
            self._engine,
            receipt_id=receipt.id,
            owner=self.owner,
            outcome="failed",
            now_ms=now,
            error=str(err),
        ):
            RECEIPTS.labels("failed").inc()
            log.error(
                "receipt %s failed for good after %d attempt(s): %s; check the SMTP relay "
                "(STOREFLEET_CP_NOTIFY_SMTP_*)", receipt.id, attempt, err,
            )  # fmt: skip
