"""Errors of the register service, beside the checkout domain's own ``CheckoutError`` tree.

Like the domain's errors, each carries a ``cashier_message`` the kiosk shows as is::

    RegisterError
    ├── NotSignedIn         nobody is signed in (or the register auto-locked)
    ├── ShiftClosed         the action needs an open shift
    ├── ShiftAlreadyOpen    a shift is open already
    ├── Busy                a card terminal request is running; wait for it
    ├── StaleScreen         the screen acted on a sale that is no longer the current one
    ├── AlreadyPaid         the sale was booked already (pay pressed twice)
    ├── NoSaleInProgress    the action needs lines in the cart or a payment started
    ├── PaymentStarted      the cart cannot change while it is being paid
    ├── CardNotApproved     the terminal declined, timed out or the customer cancelled
    ├── ReceiptNotFound     no sale with that receipt number on this register
    ├── UnknownEmployee     no such employee
    ├── ApprovalNeeded      a manager must approve (the kiosk asks for a PIN and retries)
    ├── PinWrong            the PIN did not match
    ├── EmployeeLocked      too many wrong PINs
    └── NotAllowed          the action is not possible in this state
"""

from __future__ import annotations


class RegisterError(Exception):
    """Base of register errors; nothing was booked when one is raised."""

    code = "register_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def cashier_message(self) -> str:
        """One sentence for the cashier."""
        return self.message


class NotSignedIn(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "not_signed_in"

    def __init__(self) -> None:
        super().__init__("Sign in first.")


class ShiftClosed(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "shift_closed"

    def __init__(self) -> None:
        super().__init__("Open a shift first.")


class ShiftAlreadyOpen(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "shift_open"

    def __init__(self, shift_id: str) -> None:
        super().__init__("A shift is already open on this register.")
        self.shift_id = shift_id


class Busy(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "busy"

    def __init__(self, what: str) -> None:
        super().__init__(f"Wait: {what}.")
        self.what = what


class StaleScreen(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "stale_screen"

    def __init__(self, *, expected: str, current: str) -> None:
        super().__init__("The screen was out of date; check the sale and try again.")
        self.expected = expected
        self.current = current


class AlreadyPaid(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "already_paid"

    def __init__(self, *, receipt_id: str) -> None:
        super().__init__(f"Already paid: receipt {receipt_id}. Nothing was booked twice.")
        self.receipt_id = receipt_id


class NoSaleInProgress(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "no_sale"

    def __init__(self, what: str = "Scan an item first.") -> None:
        super().__init__(what)


class PaymentStarted(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "payment_started"

    def __init__(self) -> None:
        super().__init__("The sale is being paid; go back from payment to change it.")


class CardNotApproved(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "card_not_approved"

    def __init__(self, reason: str) -> None:
        super().__init__(f"Card not approved: {reason}. Try again or take another tender.")
        self.reason = reason


class ReceiptNotFound(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "receipt_not_found"

    def __init__(self, receipt: str) -> None:
        super().__init__(f"No sale with receipt {receipt} on this register.")
        self.receipt = receipt


class UnknownEmployee(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "unknown_employee"

    def __init__(self, employee_id: str) -> None:
        super().__init__(f"No employee {employee_id}.")
        self.employee_id = employee_id


class ApprovalNeeded(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "approval_required"

    def __init__(self, *, action: str, reason: str, role: str) -> None:
        super().__init__(f"Manager approval needed: {action} ({reason}).")
        self.action = action
        self.reason = reason
        self.role = role


class PinWrong(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "pin_wrong"

    def __init__(self, *, attempts_left: int) -> None:
        plural = "attempt" if attempts_left == 1 else "attempts"
        super().__init__(f"Wrong PIN. {attempts_left} {plural} left before the lock.")
        self.attempts_left = attempts_left


class EmployeeLocked(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "locked_out"

    def __init__(self, *, employee_id: str, until: str) -> None:
        super().__init__(f"Locked after too many wrong PINs until {until}. Ask a manager.")
        self.employee_id = employee_id
        self.until = until


class NotAllowed(RegisterError):  # noqa: N818 — the name the cashier uses
    code = "not_allowed"
