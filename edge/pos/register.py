"""The register service: one per appliance, between the kiosk (or any input) and the ledger.

How it works: the register holds the till's state — who is signed in, the open shift, the cart,
the payment in progress, the last receipt — and every command runs under one lock, so two
screens or a double tap cannot interleave. Commands that act on "this sale" carry the cart id
the screen showed: a second "pay" after the sale was booked finds a different current cart and
is answered "already paid" instead of booking again (and the ledger's idempotent ``sale_id`` is
the second guard). Card terminal calls run with ``busy`` set, so any other command fails fast
with "wait" instead of queueing behind a customer typing a PIN. Domain results that need a
manager come back as ``ApprovalNeeded``; the kiosk asks for a PIN and repeats the command with
it. Listeners are called after every change so the kiosk can push the new state.

Payment, returns and shift commands live in :mod:`edge.pos.payments`, :mod:`edge.pos.returns_desk`
and :mod:`edge.pos.shift_desk` (functions over a ``Register``) to keep each module to one job.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from edge.checkout.barcodes import parse_barcode
from edge.checkout.cart import Cart, Discount
from edge.checkout.catalog import CatalogView, ChangeSet
from edge.checkout.errors import UnknownTaxClass
from edge.checkout.money import format_minor
from edge.checkout.shift import Shift
from edge.checkout.staff import (
    Approval,
    ApprovalRequired,
    Employee,
    LockedOut,
    PinRejected,
    SignedIn,
    approve,
    manager_reset,
    should_auto_lock,
    sign_in,
)
from edge.checkout.tenders import Payment, PaymentTerminal
from edge.ledger import Ledger
from edge.pos import journal_reader
from edge.pos.bookkeeper import Bookkeeper
from edge.pos.cart_codec import cart_from_json, cart_to_json
from edge.pos.errors import (
    AlreadyPaid,
    ApprovalNeeded,
    Busy,
    EmployeeLocked,
    NoSaleInProgress,
    NotSignedIn,
    PaymentStarted,
    PinWrong,
    ShiftClosed,
    StaleScreen,
    UnknownEmployee,
)
from edge.pos.loyalty_desk import LoyaltyDesk, read_card
from edge.pos.printer import ReceiptPrinter, ScreenPrinter
from edge.pos.register_db import ParkedCart, RegisterDb
from edge.pos.shift_recovery import finish_interrupted_close
from edge.pos.store_config import StoreConfig
from edge.pos.tax_check import refused_at_till, warn_untaxable
from protocols.customer_card import is_customer_card

Clock = Callable[[], datetime]
#: An open cart untouched this long no longer holds a release back (an abandoned basket).
LEASE_IDLE_S = 600.0
Listener = Callable[[], None]
#: How many completed cart ids to remember, to answer a late second "pay" with its receipt.
REMEMBER_COMPLETED = 64


def utc_now() -> datetime:
    """The register's default clock (aware, UTC)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PinEntry:
    """A manager's PIN typed on the cashier's screen to approve one command."""

    employee_id: str
    pin: str


@dataclass(frozen=True, slots=True)
class Alert:
    """A message for the cashier; ``id`` grows so the screen shows each one once."""

    id: int
    code: str
    message: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class ShownReceipt:
    """The last receipt (sale, return or report) as the kiosk shows it."""

    kind: str
    receipt_id: str
    text: str
    change_minor: int = 0


def parse_quantity(text: str | int | Decimal) -> Decimal:
    """A quantity typed on the keypad; the cart decides whether it is acceptable."""
    try:
        return Decimal(str(text).strip())
    except InvalidOperation as err:
        raise ValueError(f"not a quantity: {text!r}") from err


class Register:
    """The till. Call :meth:`start` once, then commands; ``listeners`` hear every change."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        db: RegisterDb,
        config: StoreConfig,
        catalog: CatalogView,
        terminal: PaymentTerminal | None = None,
        printer: ReceiptPrinter | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.ledger = ledger
        self.db = db
        self.config = config
        self.catalog = catalog
        self.terminal = terminal
        self.printer: ReceiptPrinter = printer or ScreenPrinter()
        self.clock = clock
        self.register_id = ledger.register_id
        self.books = Bookkeeper(ledger=ledger, db=db, register_id=self.register_id)
        self.cashier: Employee | None = None
        self.shift: Shift | None = None
        self.cart = self._new_cart()
        self.payment: Payment | None = None
        self.card_refs: list[str] = []
        self.parked: list[ParkedCart] = []
        self.last_receipt: ShownReceipt | None = None
        self.alert: Alert | None = None
        self.busy: str | None = None
        self.last_activity = clock()
        self.completed: OrderedDict[str, str] = OrderedDict()
        self.listeners: list[Listener] = []
        # the attached customer and the balances seen, kept in pos.db across restarts (issue 14)
        self.loyalty = LoyaltyDesk(store=db)
        self._alerts = 0
        self._mutex = asyncio.Lock()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Catch ``pos.db`` up with the ledger, rebuild the open shift, load parked sales."""
        await journal_reader.catch_up(self.ledger, self.db)
        shift, records = await journal_reader.open_shift(self.ledger, self.db)
        if shift is not None and shift.closed is not None:
            await finish_interrupted_close(self.books, shift, records)
            shift = None
        self.shift = shift
        self.parked = await self.db.parked()
        self.check_tax_classes("register start")  # the tax table is restart-only configuration

    def changed(self) -> None:
        """Tell every listener the state moved."""
        for listener in list(self.listeners):
            listener()

    def raise_alert(self, code: str, message: str, detail: str | None = None) -> Alert:
        """Show ``message`` on the kiosk (errors of commands, scanner input, printer)."""
        self._alerts += 1
        self.alert = Alert(self._alerts, code, message, detail)
        self.changed()
        return self.alert

    @contextlib.asynccontextmanager
    async def command(self, *, needs_cashier: bool = True) -> AsyncIterator[None]:
        """Run one command: refuse fast when busy, serialize, record activity, notify."""
        if self.busy is not None:
            raise Busy(self.busy)
        async with self._mutex:
            if self.busy is not None:
                raise Busy(self.busy)
            if needs_cashier:
                self.check_idle()
                if self.cashier is None:
                    raise NotSignedIn
            self.last_activity = self.clock()
            self.alert = None  # a new command answers the last message
            try:
                yield
            finally:
                self.changed()

    def _new_cart(self) -> Cart:
        return Cart(policy=self.config.policy, cart_id=uuid.uuid4().hex)

    def require_cashier(self) -> Employee:
        """The signed-in cashier, or :class:`NotSignedIn`."""
        if self.cashier is None:
            raise NotSignedIn
        return self.cashier

    def require_shift(self) -> Shift:
        if self.shift is None or self.shift.closed is not None:
            raise ShiftClosed
        return self.shift

    def require_cart(self, cart_id: str | None) -> None:
        """The screen acted on ``cart_id``: make sure it is still the current sale."""
        if cart_id is None or cart_id == self.cart.cart_id:
            return
        receipt = self.completed.get(cart_id)
        if receipt is not None:
            raise AlreadyPaid(receipt_id=receipt)
        raise StaleScreen(expected=cart_id, current=self.cart.cart_id)

    def _editable(self, cart_id: str | None) -> None:
        self.require_cart(cart_id)
        self.require_shift()
        if self.payment is not None:
            raise PaymentStarted

    def remember_completed(self, cart_id: str, receipt_id: str) -> None:
        self.completed[cart_id] = receipt_id
        while len(self.completed) > REMEMBER_COMPLETED:
            self.completed.popitem(last=False)

    def open_sale(self) -> tuple[str, datetime] | None:
        """What a release must wait for — the open cart or payment — and when the wait ends.

        This is the register's update lease (``docs/agent-register-contract.md``): held while a
        cart has lines or a payment is under way, until :data:`LEASE_IDLE_S` after the last
        touch, so a basket abandoned at the till never holds an update back for ever.
        """
        if self.payment is not None:
            reason = f"payment of sale {self.cart.cart_id} in progress"
        elif self.cart.lines:
            reason = f"sale {self.cart.cart_id} open ({len(self.cart.lines)} lines)"
        else:
            return None
        return reason, self.last_activity + timedelta(seconds=LEASE_IDLE_S)

    def next_sale(self) -> None:
        """Start a fresh cart (after a sale, a void, or parking)."""
        self.cart = self._new_cart()
        self.payment = None
        self.card_refs = []
        self.loyalty.attached = None

    # -- staff ----------------------------------------------------------------------------------

    def employee(self, employee_id: str) -> Employee:
        found = self.config.employee(employee_id)
        if found is None:
            raise UnknownEmployee(employee_id)
        return found

    async def sign_in(self, employee_id: str, pin: str) -> Employee:
        """PIN sign-in with the lockout the domain defines; the lockout state is persisted."""
        async with self.command(needs_cashier=False):
            employee = self.employee(employee_id)
            state = await self.db.lockout(employee_id)
            result = sign_in(
                employee, pin, state=state, now=self.clock(), policy=self.config.lockout
            )
            await self.db.save_lockout(employee_id, result.state)
            if isinstance(result, SignedIn):
                self.cashier = employee
                self.last_receipt = None
                return employee
            raise _pin_error(employee_id, result)

    async def approval(self, entry: PinEntry | None) -> Approval | None:
        """Check a manager's PIN typed for one approval (counts towards their lockout)."""
        if entry is None:
            return None
        employee = self.employee(entry.employee_id)
        state = await self.db.lockout(entry.employee_id)
        approval, result = approve(
            employee, entry.pin, state=state, now=self.clock(), policy=self.config.lockout
        )
        await self.db.save_lockout(entry.employee_id, result.state)
        if not isinstance(result, SignedIn):  # approve() gives an approval exactly then
            raise _pin_error(entry.employee_id, result)
        return approval

    async def unlock(self, employee_id: str, manager: PinEntry | None) -> None:
        """A manager lifts an employee's PIN lockout."""
        async with self.command(needs_cashier=False):
            self.employee(employee_id)
            reset = manager_reset(await self.db.lockout(employee_id), await self.approval(manager))
            if isinstance(reset, ApprovalRequired):
                raise _needs(reset)
            await self.db.save_lockout(employee_id, reset)

    async def lock(self) -> None:
        """Sign out; the cart and payment stay for whoever signs in next."""
        async with self.command(needs_cashier=False):
            self.cashier = None

    def check_idle(self) -> bool:
        """Auto-lock after the idle policy's time without a command; True if it locked now."""
        if self.cashier is None or self.busy is not None:
            return False
        if should_auto_lock(self.last_activity, self.clock(), self.config.idle):
            self.cashier = None
            return True
        return False

    def tick(self) -> None:
        """Called periodically by the kiosk: applies the auto-lock."""
        if self.check_idle():
            self.changed()

    # -- the cart -------------------------------------------------------------------------------

    async def scan(self, code: str, *, cart_id: str | None = None) -> None:
        """A scanned or typed code: a loyalty card (``SFC1:``), GTIN, in-store code or PLU."""
        async with self.command():
            if is_customer_card(code):  # before item lookup: a card attaches its customer
                self.require_cart(cart_id)
                await self.loyalty.attach(
                    read_card(code), self.config.loyalty, acked_seq=self.ledger.acked_seq
                )
                self.last_receipt = None  # the next sale starts: the screen shows its customer
                return
            self._editable(cart_id)
            parsed = parse_barcode(code, currency_exponent=self.config.currency.exponent)
            item = self.catalog.lookup(parsed)
            try:
                self.cart = self.cart.add_scan(item, parsed)
            except UnknownTaxClass as err:
                refused_at_till(err)
                raise
            self.last_receipt = None

    async def add_item(
        self, item_id: str, quantity: Decimal = Decimal(1), *, cart_id: str | None = None
    ) -> None:
        """An item chosen on screen (search, quick keys, the unknown-item prompt)."""
        async with self.command():
            self._editable(cart_id)
            try:
                self.cart = self.cart.add_item(self.catalog.by_id(item_id), quantity)
            except UnknownTaxClass as err:
                refused_at_till(err)
                raise
            self.last_receipt = None

    async def set_quantity(self, line_id: int, quantity: Decimal, *, cart_id: str | None) -> None:
        async with self.command():
            self._editable(cart_id)
            self.cart = self.cart.change_quantity(line_id, quantity)

    async def void_line(self, line_id: int, *, cart_id: str | None) -> None:
        async with self.command():
            self._editable(cart_id)
            self.cart = self.cart.void_line(line_id)

    async def override_price(
        self, line_id: int, price_minor: int, *, cart_id: str | None, manager: PinEntry | None
    ) -> None:
        async with self.command():
            self._editable(cart_id)
            self.cart.line(line_id)  # an unknown line is an error before a PIN is asked for
            result = self.cart.override_price(
                line_id, price_minor, approval=await self.approval(manager)
            )
            self.cart = _or_needs(result)

    async def discount(
        self,
        line_id: int | None,
        discount: Discount | None,
        *,
        cart_id: str | None,
        manager: PinEntry | None,
    ) -> None:
        """Discount a line (``line_id``) or the basket (None); None clears the basket's."""
        async with self.command():
            self._editable(cart_id)
            approval = await self.approval(manager)
            if line_id is None:
                self.cart = _or_needs(self.cart.discount_basket(discount, approval=approval))
            elif discount is not None:
                self.cart = _or_needs(self.cart.discount_line(line_id, discount, approval=approval))

    async def park(self, *, cart_id: str | None) -> None:
        """Put the sale aside (customer forgot something) and start a new one."""
        async with self.command():
            self._editable(cart_id)
            if not self.cart.open_lines:
                raise NoSaleInProgress("Nothing to park.")
            cashier = self.require_cashier()
            first = self.cart.open_lines[0].name
            label = f"{first} +{len(self.cart.open_lines) - 1}"
            total = self.cart.totals().total_minor
            parked = ParkedCart(
                self.cart.cart_id,
                self.clock(),
                cashier.id,
                f"{label} · {format_minor(total, self.config.currency)}",
                cart_to_json(self.cart),
            )
            await self.db.park(parked)
            self.parked = await self.db.parked()
            self.next_sale()

    async def resume(self, parked_id: str, *, cart_id: str | None) -> None:
        """Bring a parked sale back; only onto an empty cart."""
        async with self.command():
            self._editable(cart_id)
            if self.cart.open_lines:
                raise NoSaleInProgress("Finish or park the current sale first.")
            parked = await self.db.unpark(parked_id)
            self.parked = await self.db.parked()
            if parked is None:
                raise NoSaleInProgress("That parked sale was already resumed.")
            self.cart = cart_from_json(parked.cart, policy=self.config.policy)
            self.last_receipt = None

    # -- catalog --------------------------------------------------------------------------------

    def apply_catalog(self, change: ChangeSet) -> None:
        """A price or item change from the cloud; carts keep the prices they were rung at."""
        self.catalog.apply(change)
        warn_untaxable(change.upserts, self.config.policy.tax, source=f"catalog {change.version}")
        self.changed()

    def replace_catalog(self, catalog: CatalogView) -> None:
        self.catalog = catalog
        self.check_tax_classes(f"catalog {catalog.version}")
        self.changed()

    def check_tax_classes(self, source: str) -> None:
        """Warn (one log line naming them) about items the tax table cannot tax; keep them."""
        warn_untaxable(self.catalog, self.config.policy.tax, source=source)


def _pin_error(employee_id: str, result: PinRejected | LockedOut) -> PinWrong | EmployeeLocked:
    if isinstance(result, PinRejected):
        return PinWrong(attempts_left=result.attempts_left)
    return EmployeeLocked(employee_id=employee_id, until=result.until.strftime("%H:%M"))


def _needs(required: ApprovalRequired) -> ApprovalNeeded:
    return ApprovalNeeded(
        action=required.action, reason=required.reason, role=required.role.name.lower()
    )


def _or_needs(result: Cart | ApprovalRequired) -> Cart:
    if isinstance(result, ApprovalRequired):
        raise _needs(result)
    return result
