"""The card terminal adapter: ``PaymentTerminal`` over a JSON-lines TCP protocol.

How it works: each request is one connection carrying one frame and, normally, one answer
frame; a frame is a JSON object on one line (UTF-8, ``\\n``-terminated). The codec
(``encode_frame``/``decode_frame``) is sans-I/O; ``TcpPaymentTerminal`` is the thin asyncio
client around it. Frames:

    → {"op": "authorize", "ref": R, "amount_minor": 1234, "currency": "CHF"}
    → {"op": "refund", "ref": R, "amount_minor": 500, "currency": "CHF", "original_ref": T}
    → {"op": "cancel", "ref": R}
    ← {"ref": R, "status": "approved", "terminal_ref": T, "amount_minor": 1234,
       "last4": "4242", "scheme": "VISA"}
    ← {"ref": R, "status": "declined", "reason": "insufficient funds"}
    ← {"ref": R, "status": "customer_cancel"}
    ← {"ref": R, "status": "cancelled"}                  (answer to cancel)

``ref`` is the register's idempotent reference: the terminal answers a repeated ``ref`` with
the first answer and never charges twice. When no answer arrives within ``timeout`` seconds the
client sends ``cancel`` for that ``ref`` and reports ``CardTimeout``; the card data never leaves
the terminal beyond the last four digits and the scheme.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from edge.checkout.tenders import (
    CardApproved,
    CardCustomerCancel,
    CardDeclined,
    CardResult,
    CardTimeout,
)


class MalformedFrame(ValueError):  # noqa: N818 — the codec's "malformed", as in h11/mqtt5
    """A line that is not a JSON object frame."""


def encode_frame(frame: dict[str, Any]) -> bytes:
    """One frame as a JSON line."""
    return json.dumps(frame, separators=(",", ":"), sort_keys=True).encode() + b"\n"


def decode_frame(line: bytes) -> dict[str, Any]:
    """One JSON line to a frame; raises ``MalformedFrame``."""
    try:
        frame = json.loads(line, parse_float=lambda s: s)  # a float never becomes money
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MalformedFrame(str(err)) from err
    if not isinstance(frame, dict):
        raise MalformedFrame("a frame is a JSON object")
    return frame


def result_from_frame(frame: dict[str, Any], reference: str) -> CardResult:
    """Map an answer frame to a ``CardResult``; anything unexpected is a decline."""
    status = frame.get("status")
    if frame.get("ref") != reference:
        return CardDeclined(reason="terminal answered another payment")
    if status == "approved":
        amount, last4 = frame.get("amount_minor"), frame.get("last4")
        if type(amount) is not int or not isinstance(last4, str) or len(last4) != 4:
            return CardDeclined(reason="malformed approval from terminal")
        return CardApproved(
            terminal_reference=str(frame.get("terminal_ref", "")),
            amount_minor=amount,
            last4=last4,
            scheme=str(frame.get("scheme", "")),
        )
    if status == "declined":
        return CardDeclined(reason=str(frame.get("reason", "declined")))
    if status == "customer_cancel":
        return CardCustomerCancel()
    return CardDeclined(reason=f"unexpected terminal status {status!r}")


class TcpPaymentTerminal:
    """``PaymentTerminal`` for a terminal speaking the JSON-lines protocol on TCP."""

    def __init__(self, *, host: str, port: int, timeout: float = 90.0) -> None:
        self._host = host
        self._port = port
        self._timeout = timeout

    async def _exchange(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            writer.write(encode_frame(frame))
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        return decode_frame(line) if line else None

    async def _ask(self, frame: dict[str, Any]) -> CardResult:
        reference = str(frame["ref"])
        try:
            async with asyncio.timeout(self._timeout):
                answer = await self._exchange(frame)
        except TimeoutError:
            await self.cancel(reference)
            return CardTimeout(reference=reference)
        except (OSError, MalformedFrame) as err:
            return CardDeclined(reason=f"terminal unavailable: {err}")
        if answer is None:
            return CardDeclined(reason="terminal closed the connection")
        return result_from_frame(answer, reference)

    async def authorize(self, amount_minor: int, currency: str, reference: str) -> CardResult:
        """Take a card payment; see the module docstring for the frames."""
        frame = {"op": "authorize", "ref": reference, "amount_minor": amount_minor}
        return await self._ask({**frame, "currency": currency})

    async def refund(
        self, amount_minor: int, currency: str, reference: str, original_reference: str
    ) -> CardResult:
        """Refund to the card of ``original_reference``."""
        frame = {"op": "refund", "ref": reference, "amount_minor": amount_minor}
        return await self._ask({**frame, "currency": currency, "original_ref": original_reference})

    async def cancel(self, reference: str) -> None:
        """Best-effort cancel; the terminal also voids an unanswered ``ref`` on its own."""
        with contextlib.suppress(OSError, TimeoutError, MalformedFrame):
            async with asyncio.timeout(self._timeout):
                await self._exchange({"op": "cancel", "ref": reference})
