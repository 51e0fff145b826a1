"""Paying for a sale: cash with change and cash rounding, cards through a terminal, split tender.

How it works: ``Payment.start`` fixes the amount due and an idempotency key derived from the
register and the cart, so pressing "pay" twice yields the same key and the ledger's UNIQUE
constraint books one sale. Each tender returns a new ``Payment``. Cash settles the remainder
rounded to the currency's cash increment (the difference is booked as ``rounding_minor``) and
gives change; a card pays at most what is still due. ``require_settled`` raises ``TenderShort``.

Cards go through a ``PaymentTerminal`` (a one-call seam like httpx's transport): the domain only
sees ``CardResult`` values. An approved result holds the terminal reference, the last four
digits and the scheme — the PAN and CVV never enter storefleet.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, replace
from typing import Protocol, TypeAlias

from edge.checkout.errors import TenderExceedsDue, TenderShort
from edge.checkout.money import Currency, cash_round
from protocols.loyalty import POINTS_TENDER, STORE_CREDIT_TENDER


@dataclass(frozen=True, slots=True)
class CardApproved:
    """The terminal approved; ``terminal_reference`` is what a refund points back to."""

    terminal_reference: str
    amount_minor: int
    last4: str
    scheme: str


@dataclass(frozen=True, slots=True)
class CardDeclined:
    """The issuer or terminal declined; ``reason`` is for the cashier."""

    reason: str


@dataclass(frozen=True, slots=True)
class CardTimeout:
    """No answer in time; the adapter has asked the terminal to cancel ``reference``."""

    reference: str


@dataclass(frozen=True, slots=True)
class CardCustomerCancel:
    """The customer pressed cancel on the terminal."""


CardResult: TypeAlias = CardApproved | CardDeclined | CardTimeout | CardCustomerCancel


class PaymentTerminal(Protocol):
    """The seam to any card terminal; ``reference`` is unique per attempt and idempotent."""

    async def authorize(self, amount_minor: int, currency: str, reference: str) -> CardResult:
        """Take a card payment of ``amount_minor``."""
        ...

    async def refund(
        self, amount_minor: int, currency: str, reference: str, original_reference: str
    ) -> CardResult:
        """Refund to the card of the payment with terminal reference ``original_reference``."""
        ...

    async def cancel(self, reference: str) -> None:
        """Cancel (or reverse) the attempt ``reference``; safe to call more than once."""
        ...


class TenderKind(enum.Enum):
    """How a tender was paid; points and store credit spend the attached customer's balance."""

    CASH = "cash"
    CARD = "card"
    POINTS = POINTS_TENDER
    STORE_CREDIT = STORE_CREDIT_TENDER


@dataclass(frozen=True, slots=True)
class Tender:
    """One payment towards the sale; ``amount_minor`` is what it pays after change."""

    kind: TenderKind
    amount_minor: int
    received_minor: int
    change_minor: int = 0
    terminal_reference: str | None = None
    last4: str | None = None
    scheme: str | None = None


def payment_key(register_id: str, cart_id: str) -> str:
    """The idempotency key of a sale's payment: the same cart on the same register, same key."""
    return hashlib.sha256(f"storefleet/pay/v1/{register_id}/{cart_id}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Payment:
    """The tendering of one sale; start with ``Payment.start``."""

    due_minor: int
    currency: Currency
    idempotency_key: str
    tenders: tuple[Tender, ...] = ()
    rounding_minor: int = 0
    card_attempts: int = 0

    @classmethod
    def start(
        cls, *, due_minor: int, currency: Currency, register_id: str, cart_id: str
    ) -> Payment:
        """Begin paying ``due_minor`` (the cart total)."""
        return cls(due_minor, currency, payment_key(register_id, cart_id))

    @property
    def paid_minor(self) -> int:
        return sum(t.amount_minor for t in self.tenders)

    @property
    def remaining_minor(self) -> int:
        """Still to pay, after cash rounding already booked."""
        return self.due_minor + self.rounding_minor - self.paid_minor

    @property
    def cash_due_minor(self) -> int:
        """What cash must hand over to settle now: the remainder rounded to the cash increment."""
        return cash_round(self.remaining_minor, self.currency.cash_increment_minor)

    @property
    def change_minor(self) -> int:
        return sum(t.change_minor for t in self.tenders)

    @property
    def settled(self) -> bool:
        return self.remaining_minor == 0

    def next_card_reference(self) -> str:
        """Reference for the next card attempt: stable for a retry of the same attempt."""
        return f"{self.idempotency_key[:20]}-{self.card_attempts + 1}"

    def add_cash(self, received_minor: int) -> Payment:
        """Cash handed over; settles with change when it covers ``cash_due_minor``."""
        if received_minor < 0:
            raise ValueError("cash received cannot be negative")
        remaining, cash_due = self.remaining_minor, self.cash_due_minor
        if remaining <= 0:
            raise TenderExceedsDue(remaining_minor=remaining, amount_minor=received_minor)
        rounding = self.rounding_minor
        if received_minor >= cash_due:
            applied, change = cash_due, received_minor - cash_due
            rounding += cash_due - remaining
        elif received_minor >= remaining:  # between the exact and the rounded amount: no change
            applied, change = received_minor, 0
            rounding += received_minor - remaining
        else:
            applied, change = received_minor, 0
        tender = Tender(TenderKind.CASH, applied, received_minor, change)
        return replace(self, tenders=(*self.tenders, tender), rounding_minor=rounding)

    def add_card(self, approved: CardApproved) -> Payment:
        """An approved card payment; never more than is still due."""
        if approved.amount_minor > self.remaining_minor or approved.amount_minor <= 0:
            raise TenderExceedsDue(
                remaining_minor=self.remaining_minor, amount_minor=approved.amount_minor
            )
        tender = Tender(
            TenderKind.CARD,
            approved.amount_minor,
            approved.amount_minor,
            terminal_reference=approved.terminal_reference,
            last4=approved.last4,
            scheme=approved.scheme,
        )
        return replace(self, tenders=(*self.tenders, tender))

    def add_balance(self, kind: TenderKind, amount_minor: int) -> Payment:
        """Points or store credit worth ``amount_minor``; never more than is still due."""
        if kind not in (TenderKind.POINTS, TenderKind.STORE_CREDIT):
            raise ValueError(f"{kind.value} is not paid from a customer's balance")
        if amount_minor <= 0 or amount_minor > self.remaining_minor:
            raise TenderExceedsDue(remaining_minor=self.remaining_minor, amount_minor=amount_minor)
        tender = Tender(kind, amount_minor, amount_minor)
        return replace(self, tenders=(*self.tenders, tender))

    def balance_paid_minor(self, kind: TenderKind) -> int:
        """What tenders of ``kind`` (points, store credit) paid."""
        return sum(t.amount_minor for t in self.tenders if t.kind is kind)

    def require_settled(self) -> None:
        """Raise ``TenderShort`` unless the tenders cover the amount due."""
        if not self.settled:
            raise TenderShort(
                due_minor=self.due_minor + self.rounding_minor, tendered_minor=self.paid_minor
            )


async def pay_by_card(
    terminal: PaymentTerminal, payment: Payment, amount_minor: int | None = None
) -> tuple[Payment, CardResult]:
    """Ask the terminal for ``amount_minor`` (default: all that is due); book it if approved."""
    amount = payment.remaining_minor if amount_minor is None else amount_minor
    if amount <= 0 or amount > payment.remaining_minor:
        raise TenderExceedsDue(remaining_minor=payment.remaining_minor, amount_minor=amount)
    reference = payment.next_card_reference()
    payment = replace(payment, card_attempts=payment.card_attempts + 1)
    result = await terminal.authorize(amount, payment.currency.code, reference)
    if isinstance(result, CardApproved):
        payment = payment.add_card(result)
    return payment, result
