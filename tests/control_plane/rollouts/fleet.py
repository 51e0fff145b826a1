"""Signed bundles and simulated appliances for the release and rollout tests.

`make_bundle` builds a real bundle with the bundle format's own writer, signed with an Ed25519
key. `SimulatedDevice` is an appliance as the broker sees it: it connects with its device id,
publishes its retained status and ``State`` (its running ``app_release``) on its own topics,
and answers the retained ``DesiredRelease`` on its ``release`` topic with ``release.progress``
events — through a good install, a revert (the register crashed on start: the agent switched
back, and its State still shows the old release), or silence. Imported, not a conftest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import time
from collections.abc import AsyncIterator
from typing import Literal

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols.codec import decode, encode
from protocols.messages import DesiredRelease, Event, State, Status
from protocols.release_bundle import (
    BundleFile,
    Manifest,
    ReleaseState,
    progress_body,
    sign_manifest,
    write_bundle,
)
from protocols.topics import Channel, device_topic

Behaviour = Literal["good", "reverts", "silent", "lies"]


def make_bundle(
    version: str, key: Ed25519PrivateKey, *, wheel: bytes = b"wheel bytes", tamper: bool = False
) -> bytes:
    """A bundle of one wheel signed by ``key``; ``tamper`` changes the wheel after signing."""
    path = f"wheels/storefleet-{version}-py3-none-any.whl"
    manifest = Manifest(
        version=version,
        min_agent_version="0.1.0",
        created_at="2026-12-06T00:00:00Z",
        files=[BundleFile(path=path, size=len(wheel), sha256=hashlib.sha256(wheel).hexdigest())],
    )
    signature = sign_manifest(manifest.to_bytes(), key)
    content = bytes([wheel[0] ^ 1]) + wheel[1:] if tamper else wheel
    out = io.BytesIO()
    write_bundle(
        out, manifest=manifest, signature=signature, open_file=lambda _: io.BytesIO(content)
    )
    return out.getvalue()


class SimulatedDevice:
    """One appliance on the broker, answering its desired release as ``behaviour`` says."""

    def __init__(
        self, device_id: str, broker_port: int, *, running: str, behaviour: Behaviour = "good"
    ) -> None:
        self.device_id = device_id
        self.port = broker_port
        self.running = running
        self.behaviour = behaviour
        self.desired: list[DesiredRelease] = []

    def _topic(self, channel: Channel) -> str:
        return device_topic(self.device_id, channel)

    async def _publish(self, client: aiomqtt.Client, channel: Channel, message: object) -> None:
        retain = channel in {Channel.STATUS, Channel.STATE}
        await client.publish(self._topic(channel), encode(message), qos=1, retain=retain)  # type: ignore[arg-type]

    async def _progress(
        self, client: aiomqtt.Client, desired: DesiredRelease, state: ReleaseState, detail: str = ""
    ) -> None:
        body = progress_body(
            rollout=desired.rollout, version=desired.version, state=state, detail=detail
        )
        event = Event(kind="release.progress", ts=time.time_ns() // 1_000_000, body=body)
        await self._publish(client, Channel.EVENTS, event)

    async def _install(self, client: aiomqtt.Client, desired: DesiredRelease) -> None:
        if self.behaviour == "silent" or desired.version == self.running:
            return
        for state in (
            ReleaseState.NOTIFIED,
            ReleaseState.DOWNLOADING,
            ReleaseState.VERIFYING,
            ReleaseState.INSTALLING,
            ReleaseState.CONFIRMING,
        ):
            await self._progress(client, desired, state)
        if self.behaviour == "reverts":
            await self._progress(
                client, desired, ReleaseState.REVERTED, "the register crashed on start"
            )
            return
        if self.behaviour == "good":
            self.running = desired.version
            await self._publish(client, Channel.STATE, State(app_release=self.running, slot="b"))
        await self._progress(client, desired, ReleaseState.SUCCEEDED)  # "lies": still old

    @contextlib.asynccontextmanager
    async def online(self) -> AsyncIterator[None]:
        """Connected (status online, State retained) and answering, until the block ends."""
        async with aiomqtt.Client(
            "127.0.0.1", self.port, identifier=self.device_id, clean_session=True
        ) as client:
            await self._publish(client, Channel.STATUS, Status(state="online"))
            await self._publish(client, Channel.STATE, State(app_release=self.running, slot="a"))
            await client.subscribe(self._topic(Channel.RELEASE), qos=1)
            task = asyncio.create_task(self._answer(client))
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await self._publish(client, Channel.STATUS, Status(state="offline"))

    async def _answer(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            assert isinstance(payload, bytes)
            if not payload:
                continue
            desired = decode(str(message.topic), payload).message
            assert isinstance(desired, DesiredRelease)
            self.desired.append(desired)
            await self._install(client, desired)


@contextlib.asynccontextmanager
async def all_online(fleet: list[SimulatedDevice]) -> AsyncIterator[None]:
    """Every device of ``fleet`` online for the block."""
    async with contextlib.AsyncExitStack() as stack:
        for device in fleet:
            await stack.enter_async_context(device.online())
        yield
