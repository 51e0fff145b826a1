"""How the register is: ready to sell, sales, replication, peripherals — one snapshot, three uses.

The same :class:`RegisterHealth` answers the fleet agent's heartbeat (the local contract),
``GET /healthz`` on the kiosk's port, and the gauges of ``GET /metrics``, so the three can never
disagree. ``ready`` means the register can take a sale now: the kiosk serves, the register has
caught its index up with the ledger and it is enrolled (a first-boot screen is alive, not ready).

Metrics (Prometheus, on the kiosk's port at ``/metrics``):

* ``storefleet_register_sales_total`` — sales committed to the ledger by this process.
* ``storefleet_register_sale_seconds`` — how long the ledger took to commit a sale (histogram).
* ``storefleet_register_ready``, ``storefleet_register_journal_backlog``,
  ``storefleet_register_journal_last_seq``, ``storefleet_register_peripheral_up{device}`` —
  read from the live register at each scrape.
* the replicator's ``storefleet_edge_replication_lag_seconds`` and the peripherals'
  ``storefleet_rfid_reads_total`` and ``storefleet_print_jobs_total`` are in the same registry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from edge.agent.contract import Heartbeat, ReplicationHealth, SalesHealth, UpdateLease
from edge.ledger import CommittedSale, Ledger, SaleDraft
from edge.replication.replicator import Replicator

log = logging.getLogger(__name__)

SALES = Counter(
    "storefleet_register_sales", "Sales committed to the ledger by this register", ["register"]
)
SALE_SECONDS = Histogram(
    "storefleet_register_sale_seconds",
    "Time for the ledger to commit one sale (journal record and business rows, fsync'd)",
    ["register"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

PeripheralHealth = Callable[[], Mapping[str, Mapping[str, Any]]]


class ObservedLedger(Ledger):
    """The ledger, with every committed sale counted, timed and logged (device id, sale, seq).

    A subclass rather than a wrapper: the register and the replicator take a ``Ledger``.
    """

    def __init__(self, *args: Any, on_sale: Callable[[CommittedSale], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_sale = on_sale

    async def record_sale(
        self,
        draft: SaleDraft,
        *,
        detail: Callable[[int], Mapping[str, object]] | None = None,
    ) -> CommittedSale:
        """Commit as the ledger does; then count it, time it and log it once."""
        started = time.perf_counter()
        committed = await super().record_sale(draft, detail=detail)
        if not committed.replayed:
            SALE_SECONDS.labels(self.register_id).observe(time.perf_counter() - started)
            SALES.labels(self.register_id).inc()
            log.info(
                "sale committed",
                extra={"sale_id": committed.sale_id, "seq": committed.seq},
            )
            self._on_sale(committed)
        return committed


class RegisterHealth:
    """The live register's health; parts join as the composition brings them up."""

    def __init__(self, *, register_id: str) -> None:
        self.register_id = register_id
        self.device_id = ""
        self.ledger: Ledger | None = None
        self.replicator: Replicator | None = None
        self.peripherals: PeripheralHealth | None = None
        self.enrolled = False
        self.serving = False  # the kiosk accepts connections
        self.started = False  # the register caught up with its ledger
        self.committed = 0
        self.last_sale_ts: int | None = None
        #: the open sale a release must wait for, and until when (``Register.open_sale``)
        self.open_sale: Callable[[], tuple[str, datetime] | None] | None = None

    @property
    def ready(self) -> bool:
        """The register can take a sale now."""
        return self.serving and self.started and self.enrolled

    def sale_committed(self, sale: CommittedSale) -> None:
        """Called by :class:`ObservedLedger` after each new sale."""
        self.committed += 1
        self.last_sale_ts = time.time_ns() // 1_000_000

    def heartbeat(self) -> Heartbeat:
        """The snapshot, as the fleet agent reads it."""
        ledger, replicator = self.ledger, self.replicator
        replication = ReplicationHealth()
        if ledger is not None:
            replication = ReplicationHealth(
                connected=replicator is not None and replicator.connected.is_set(),
                backlog=ledger.backlog,
                acked_seq=ledger.acked_seq,
                lag_ms=None if replicator is None else replicator.last_lag_ms,
                refusal=None if replicator is None else replicator.refusal,
            )
        peripherals = {} if self.peripherals is None else self.peripherals()
        return Heartbeat(
            ts=time.time_ns() // 1_000_000,
            ready=self.ready,
            enrolled=self.enrolled,
            sales=SalesHealth(
                committed=self.committed,
                last_seq=0 if ledger is None else ledger.last_seq,
                last_sale_ts=self.last_sale_ts,
            ),
            replication=replication,
            peripherals={name: dict(h) for name, h in peripherals.items()},
            lease=self._lease(),
        )

    def _lease(self) -> UpdateLease | None:
        """The update lease while a sale is open (the agent does not switch releases then)."""
        held = None if self.open_sale is None else self.open_sale()
        if held is None:
            return None
        reason, until = held
        return UpdateLease(
            owner=f"register {self.register_id}",
            reason=reason[:200],
            expires_at=int(until.timestamp() * 1000),
        )

    def healthz(self) -> dict[str, Any]:
        """The ``/healthz`` body."""
        beat = self.heartbeat().model_dump(exclude={"type", "v", "ts"})
        return {"device_id": self.device_id, "register_id": self.register_id, **beat}


class _HealthCollector(Collector):
    """Gauges read from every live register of this process at scrape time."""

    def __init__(self) -> None:
        self.registers: list[RegisterHealth] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ready = GaugeMetricFamily(
            "storefleet_register_ready", "1 when the register can take a sale", labels=["register"]
        )
        backlog = GaugeMetricFamily(
            "storefleet_register_journal_backlog",
            "Journal records not yet acknowledged by the cloud",
            labels=["register"],
        )
        last_seq = GaugeMetricFamily(
            "storefleet_register_journal_last_seq",
            "The journal's head",
            labels=["register"],
        )
        up = GaugeMetricFamily(
            "storefleet_register_peripheral_up",
            "1 when the peripheral is connected (printer, scanner, RFID reader)",
            labels=["register", "device"],
        )
        for health in list(self.registers):
            rid = health.register_id
            ready.add_metric([rid], 1.0 if health.ready else 0.0)
            if health.ledger is not None:
                backlog.add_metric([rid], float(health.ledger.backlog))
                last_seq.add_metric([rid], float(health.ledger.last_seq))
            if health.peripherals is not None:
                for name, state in health.peripherals().items():
                    up.add_metric([rid, name], 1.0 if state.get("connected") else 0.0)
        yield from (ready, backlog, last_seq, up)


COLLECTOR = _HealthCollector()
REGISTRY.register(COLLECTOR)


def serve_health(app: FastAPI, health: RegisterHealth) -> None:
    """``GET /healthz`` (200 ready to sell, else 503, same body) and ``GET /metrics`` on ``app``.

    Registers ``health`` for the scrape-time gauges for as long as the process lives (the demo's
    registers are few and live as long as the process).
    """
    COLLECTOR.registers.append(health)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse(health.healthz(), status_code=200 if health.ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
