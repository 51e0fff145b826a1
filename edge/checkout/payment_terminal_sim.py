"""A card terminal simulator on loopback TCP, speaking the adapter's JSON-lines protocol.

How it works: the frames are those documented in ``payment_terminal_client`` (one JSON object
per line; ``authorize``/``refund``/``cancel`` in, ``approved``/``declined``/``customer_cancel``/
``cancelled`` out). Each ``authorize`` or ``refund`` takes the next ``Outcome`` from the script
(``APPROVE`` when the script is empty). ``TIMEOUT`` means the terminal never answers that
request — as when a customer walks away mid-PIN — and the client's timeout and ``cancel`` take
over. A repeated ``ref`` gets the first answer again, as a real terminal's idempotency does, so a
retried request never charges twice. Card data is fixed (last four digits and scheme only).

    async with PaymentTerminalSimulator(script=[Outcome.DECLINE]) as sim:
        terminal = TcpPaymentTerminal(host=sim.host, port=sim.port)
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

from edge.checkout.payment_terminal_client import MalformedFrame, decode_frame, encode_frame


class Outcome(enum.Enum):
    """What the simulated customer and issuer do with the next request."""

    APPROVE = "approve"
    DECLINE = "decline"
    TIMEOUT = "timeout"
    CUSTOMER_CANCEL = "customer_cancel"


class PaymentTerminalSimulator:
    """Scriptable terminal; an async context manager serving on ``host:port``."""

    def __init__(
        self,
        *,
        script: Iterable[Outcome] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        last4: str = "4242",
        scheme: str = "VISA",
    ) -> None:
        self.host = host
        self.port = port
        self._script = deque(script)
        self._last4 = last4
        self._scheme = scheme
        self._answers: dict[str, dict[str, Any] | None] = {}
        self._numbers = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.requests: list[dict[str, Any]] = []
        self.cancelled: set[str] = set()
        self.charged_minor = 0

    def push(self, *outcomes: Outcome) -> None:
        """Append outcomes to the script."""
        self._script.extend(outcomes)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is None:  # never entered: nothing listens
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while line := await reader.readline():
                try:
                    frame = decode_frame(line)
                except MalformedFrame as err:
                    answer: dict[str, Any] | None = {"status": "error", "reason": str(err)}
                else:
                    answer = self._answer(frame)
                if answer is not None:
                    writer.write(encode_frame(answer))
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        self.requests.append(frame)
        ref = str(frame.get("ref"))
        if frame.get("op") == "cancel":
            self.cancelled.add(ref)
            previous = self._answers.get(ref)
            if previous is not None and previous.get("status") == "approved":
                self.charged_minor -= int(previous["amount_minor"])  # a reversal
            self._answers[ref] = {"ref": ref, "status": "declined", "reason": "cancelled"}
            return {"ref": ref, "status": "cancelled"}
        if frame.get("op") not in ("authorize", "refund"):
            return {"ref": ref, "status": "error", "reason": "unknown op"}
        if ref in self._answers:
            return self._answers[ref]
        outcome = self._script.popleft() if self._script else Outcome.APPROVE
        answer = self._decide(frame, ref, outcome)
        self._answers[ref] = answer
        return answer

    def _decide(self, frame: dict[str, Any], ref: str, outcome: Outcome) -> dict[str, Any] | None:
        if outcome is Outcome.TIMEOUT:
            return None
        if outcome is Outcome.DECLINE:
            return {"ref": ref, "status": "declined", "reason": "insufficient funds"}
        if outcome is Outcome.CUSTOMER_CANCEL:
            return {"ref": ref, "status": "customer_cancel"}
        amount = int(frame["amount_minor"])
        self.charged_minor += amount if frame["op"] == "authorize" else -amount
        return {
            "ref": ref,
            "status": "approved",
            "terminal_ref": f"SIM{next(self._numbers):08d}",
            "amount_minor": amount,
            "last4": self._last4,
            "scheme": self._scheme,
        }
