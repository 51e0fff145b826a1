"""Real local receivers for notifications: an HTTP server and an SMTP server, in this loop.

Both are raw asyncio servers on a free loopback port (no extra dependency): the webhook receiver
answers each POST with the next status of its script (then 200) and keeps every request it got;
the SMTP server speaks enough of RFC 5321 for ``smtplib`` (EHLO/HELO, MAIL, RCPT, DATA, RSET,
NOOP, QUIT) and keeps every message it accepted, parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage

from tests.harness.services import free_port

_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Received:
    """One request the webhook receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A loopback HTTP server: answers each request with the next scripted status."""

    port: int
    script: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/storefleet"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            _method, path, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Received(path=path, headers=headers, body=body))
            status = self.script.pop(0) if self.script else 200
            reason = _REASONS.get(status, "Status")
            head = f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n"
            writer.write(head.encode() + b"\r\n")
            await writer.drain()
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def webhook_receiver(*script: int) -> AsyncIterator[WebhookReceiver]:
    """A receiver serving until the block ends; ``script``: the first answers' statuses."""
    receiver = WebhookReceiver(port=free_port(), script=list(script))
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", receiver.port)
    async with server:
        yield receiver


@dataclass
class SmtpServer:
    """A loopback SMTP server that accepts every message and keeps it."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sender, recipients = "", []

        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        try:
            await say("220 test SMTP ready")
            while line := (await reader.readline()).decode("latin-1").rstrip("\r\n"):
                verb = line.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    await say("250-test\r\n250 8BITMIME")
                elif verb in {"HELO", "NOOP"}:
                    await say("250 ok")
                elif verb == "MAIL":
                    sender, recipients = line.split(":", 1)[1].strip().strip("<>"), []
                    await say("250 ok")
                elif verb == "RCPT":
                    recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                    await say("250 ok")
                elif verb == "DATA":
                    await say("354 end with <CRLF>.<CRLF>")
                    data = await reader.readuntil(b"\r\n.\r\n")
                    raw = data[: -len(b".\r\n")].replace(b"\r\n..", b"\r\n.")
                    parsed = email.message_from_bytes(raw, policy=email.policy.default)
                    self.messages.append(parsed)  # type: ignore[arg-type]
                    self.envelopes.append((sender, recipients))
                    await say("250 queued")
                elif verb == "RSET":
                    sender, recipients = "", []
                    await say("250 ok")
                elif verb == "QUIT":
                    await say("221 bye")
                    break
                else:
                    await say("502 not implemented")
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def smtp_server() -> AsyncIterator[SmtpServer]:
    """An SMTP server serving until the block ends."""
    smtp = SmtpServer(port=free_port())
    server = await asyncio.start_server(smtp.handle, "127.0.0.1", smtp.port)
    async with server:
        yield smtp
