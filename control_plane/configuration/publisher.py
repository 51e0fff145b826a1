"""The configuration link: effective documents out (retained, on ``config``), reports in.

How it works: one MQTT connection of its own, run supervised by the app's lifespan like the
ingest worker, reconnecting with :class:`mqttlink.backoff.Backoff`. On every (re)connect it
*reconciles*: a sweep recomputes every tenant (devices registered since), then every stored
effective document is published again, retained, at QoS 1 — what the database says, so the
broker's retained copy is right even after it lost its store; a device ignores a version it
already has, so this is idempotent. After that it publishes only documents whose version is
newer than the one last published (``config_effective.published_version``): an API change
wakes it (:meth:`ConfigLink.poke`), and a sweep every ``sweep_s`` picks up new devices and
changes made through another instance. A device that was offline finds the retained document
when it subscribes again.

The same connection subscribes to every device's retained ``state`` and keeps its configuration
report (version, ``config_hashes``) for drift (:mod:`control_plane.configuration.drift`). A
report that cannot be read is counted and logged once per reason, never fatal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import uuid
from dataclasses import dataclass

from prometheus_client import Counter
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration import drift, service
from control_plane.configuration.tables import config_effective
from mqttlink.backoff import Backoff
from mqttlink.link import MqttLink
from mqttlink.reconnect import reconnect_forever
from protocols.broker_url import BrokerAddress
from protocols.codec import decode, encode
from protocols.errors import ProtocolError
from protocols.messages import DesiredConfig, State
from protocols.topics import Channel, all_devices_filter, device_topic

log = logging.getLogger(__name__)
PUBLISH_BATCH = 200  # documents in flight at once, then their rows marked in one transaction

PUBLISHED = Counter(
    "storefleet_config_published_total",
    "Effective configuration documents published retained on devices' config topics",
)
REPORTS = Counter(
    "storefleet_config_reports_total",
    "Configuration reports (retained state) read by the configuration link, by outcome",
    ["outcome"],
)


@dataclass(frozen=True, kw_only=True)
class LinkSettings:
    """How often the link sweeps and how long it waits for the broker."""

    sweep_s: float = 30.0
    timeout_s: float = 10.0
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    healthy_s: float = 30.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ConfigLink:
    """Runs until cancelled; ``connected`` is set while it holds a broker connection."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        broker: BrokerAddress,
        settings: LinkSettings | None = None,
        tls_context: ssl.SSLContext | None = None,
        identifier: str | None = None,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.settings = settings or LinkSettings()
        self.tls_context = tls_context
        self.identifier = identifier or f"control-plane-config-{uuid.uuid4().hex[:8]}"
        self.connected = asyncio.Event()
        self.reconciled = asyncio.Event()
        self.published = 0
        self.reports_kept = 0
        self._wake = asyncio.Event()
        self._warned: set[str] = set()

    def poke(self) -> None:
        """Something changed in the database: publish what is newer soon."""
        self._wake.set()

    async def run(self) -> None:
        """Serve forever; each lost connection is logged and retried with jittered backoff."""
        await reconnect_forever(
            self._session,
            backoff=Backoff.from_settings(self.settings, healthy_s=self.settings.healthy_s),
            log=log,
            what="configuration link",
            url=self.broker.url,
            lost=self._lost,
        )

    def _lost(self) -> None:
        self.connected.clear()
        self.reconciled.clear()

    async def _session(self, backoff: Backoff) -> None:
        async with MqttLink(
            broker=self.broker,
            identifier=self.identifier,
            clean_session=True,
            keepalive=15,
            timeout_s=self.settings.timeout_s,
            tls_context=self.tls_context,
        ) as link:
            await link.subscribe(all_devices_filter(Channel.STATE), qos=1)
            self.connected.set()
            backoff.up()
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._receive(link), name="config-reports")
                    tasks.create_task(self._publish_loop(link), name="config-publish")
            finally:
                self.connected.clear()

    async def _publish_loop(self, link: MqttLink) -> None:
        await service.sweep(self.engine)
        await self.publish(link, everything=True)  # reconcile: what the database says
        self.reconciled.set()
        while True:
            swept = False
            try:
                async with asyncio.timeout(self.settings.sweep_s):
                    await self._wake.wait()
            except TimeoutError:
                swept = True
            self._wake.clear()
            if swept:
                await service.sweep(self.engine)
            await self.publish(link, everything=False)

    async def publish(self, link: MqttLink, *, everything: bool) -> int:
        """Publish retained every document newer than last published (``everything``: all)."""
        query = select(
            config_effective.c.device_id, config_effective.c.version, config_effective.c.document
        )
        if not everything:
            query = query.where(config_effective.c.published_version < config_effective.c.version)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(config_effective.c.device_id))).all()
        for start in range(0, len(rows), PUBLISH_BATCH):
            batch = rows[start : start + PUBLISH_BATCH]
            # a batch in flight at once (the client queues past the broker's in-flight window):
            # one PUBACK round trip after another made 1,000 documents take seconds
            async with asyncio.TaskGroup() as sending:
                for row in batch:
                    message = DesiredConfig(version=row.version, doc=json.loads(row.document))
                    topic = device_topic(row.device_id, Channel.CONFIG)
                    sending.create_task(
                        link.publish(topic, encode(message), qos=1, retain=True),
                        name=f"config-publish:{row.device_id}",
                    )
            # marked once the broker has them (PUBACK); a newer version stays unpublished
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(config_effective)
                    .where(
                        config_effective.c.device_id == bindparam("device"),
                        config_effective.c.version == bindparam("published"),
                    )
                    .values(published_version=bindparam("published"), published_at=_now_ms()),
                    [{"device": row.device_id, "published": row.version} for row in batch],
                )
            self.published += len(batch)
            PUBLISHED.inc(len(batch))
        return len(rows)

    async def _receive(self, link: MqttLink) -> None:
        async for message in link.messages:
            payload = message.payload
            raw = payload if isinstance(payload, bytes) else str(payload).encode()
            await self._report(str(message.topic), raw)

    async def _report(self, topic: str, raw: bytes) -> None:
        """Keep one device's configuration report; anything unusable is counted and logged."""
        try:
            inbound = decode(topic, raw)
        except ProtocolError as err:
            self._refuse(err.metric_label, f"{err} (topic {topic!r}); dropped")
            return
        state = inbound.message
        if not isinstance(state, State):
            self._refuse("unexpected_message", f"{topic} is not a state report; dropped")
            return
        hashes = dict(getattr(state, "config_hashes", None) or {}) or None
        try:
            known = await drift.record_report(
                self.engine,
                device_id=inbound.address.device_id,
                version=state.config_version,
                hashes=hashes,
                now=_now_ms(),
            )
        except Exception as err:  # the database: one line, the next report goes on
            self._refuse("store_error", f"could not keep the report of {topic}: {err!r}")
            return
        if not known:
            self._refuse(
                "unknown_device",
                f"{inbound.address.device_id} is not registered; its report is dropped",
            )
            return
        self.reports_kept += 1
        REPORTS.labels("kept").inc()

    def _refuse(self, reason: str, what: str) -> None:
        REPORTS.labels(reason).inc()
        level = logging.INFO if reason in self._warned else logging.WARNING
        self._warned.add(reason)
        log.log(level, "configuration link: %s", what)
