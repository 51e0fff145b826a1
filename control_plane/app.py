"""The control plane application: API, console, ingest worker and (by default) a broker.

``create_app`` wires the parts; the lifespan runs every background task supervised
(:mod:`control_plane.supervision`): the ingest worker that dies is counted, logged and restarted
with backoff, and ``/readyz`` answers 503 until it runs connected again.

Every operator route and console page is guarded by its policy action (``operators.policy``);
only the enrolment redemption (its token is the credential), the CA and CRL, ``/healthz``,
``/readyz``, the login pages and the API's documentation answer without credentials, and
``/metrics`` only to the monitoring networks. Requests naming a host the control plane is not
(DNS rebinding) are refused before any of it (:mod:`control_plane.exposure`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator

from fastapi import FastAPI

from control_plane.alerts.evaluator import EvaluatorSettings, run_evaluator
from control_plane.alerts.router import router as alerts_router
from control_plane.api_docs import install_offline_docs
from control_plane.catalog.import_router import router as catalog_import_router
from control_plane.catalog.router import router as catalog_router
from control_plane.commands.router import router as commands_router
from control_plane.configuration.pages import router as configuration_pages
from control_plane.configuration.publisher import ConfigLink
from control_plane.configuration.router import router as configuration_router
from control_plane.configuration.staged_driver import drive_changes
from control_plane.console.router import router as console_router
from control_plane.customers.keyring import Keyring
from control_plane.customers.mailer import ReceiptMailer
from control_plane.customers.pages import router as customer_pages
from control_plane.customers.router import router as customers_router
from control_plane.customers.service import keep_customers_reindexed
from control_plane.customers.settings import MASTER_KEY_VARIABLE, load_customer_settings
from control_plane.db.engine import make_engine, migrate
from control_plane.devices.logs import router as device_logs_router
from control_plane.devices.router import router as devices_router
from control_plane.embedded_broker import embedded_broker
from control_plane.exposure import TrustedHosts, metrics_app
from control_plane.health import router as health_router
from control_plane.ingest.worker import IngestSettings, IngestWorker
from control_plane.loyalty.router import router as loyalty_router
from control_plane.notifications.router import router as notifications_router
from control_plane.notifications.settings import load_notification_settings
from control_plane.notifications.worker import Notifier
from control_plane.operators.guards import document_guards
from control_plane.operators.router import router as operators_router
from control_plane.problems import install_problem_handlers
from control_plane.provisioning.authority import FleetAuthority
from control_plane.provisioning.broker_sync import keep_broker_access_in_step
from control_plane.provisioning.errors import refusal_problem
from control_plane.provisioning.mqtt_identity import ensure_control_plane_identity
from control_plane.provisioning.router import router as provisioning_router
from control_plane.provisioning.settings import ProvisioningSettings
from control_plane.releases.router import router as releases_router
from control_plane.reports.fold_worker import FoldWorker
from control_plane.reports.router import router as reports_router
from control_plane.rollouts.background import drive_rollouts
from control_plane.rollouts.balena_cloud import load_balena_settings
from control_plane.rollouts.pages import router as rollout_pages
from control_plane.rollouts.router import router as rollouts_router
from control_plane.sales.router import router as sales_router
from control_plane.settings import ControlPlaneSettings
from control_plane.stock.projection import run_catch_up
from control_plane.stock.router import router as stock_router
from control_plane.supervision import background_tasks
from provisioning.errors import EnrolmentRefused

log = logging.getLogger(__name__)


def create_app(settings: ControlPlaneSettings | None = None) -> FastAPI:
    """Build the ASGI app; nothing starts until the lifespan runs."""
    settings = settings or ControlPlaneSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.plain_http_exposed:
            log.warning(
                "serving plain HTTP on %s: passwords, session cookies and API tokens cross the "
                "network in clear; set STOREFLEET_CP_TLS_CERT and STOREFLEET_CP_TLS_KEY, or put "
                "a TLS reverse proxy in front (STOREFLEET_CP_TRUSTED_PROXIES)",
                settings.host,
            )
        engine = make_engine(settings.database_url)
        await migrate(engine)
        app.state.engine = engine
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)  # last out: after every task has stopped
            if settings.embedded_broker:
                await stack.enter_async_context(embedded_broker(settings.embedded_broker_port))
            tls_context = await _ingest_identity(app, settings) if settings.broker.tls else None
            worker = IngestWorker(
                engine=engine,
                broker=settings.broker,
                tls_context=tls_context,
                settings=IngestSettings(
                    shared_subscription=settings.use_shared_subscription,
                    partitions=settings.ingest_partitions,
                ),
            )
            app.state.ingest = worker
            background = await stack.enter_async_context(background_tasks())
            app.state.ingest_task = background.supervise("ingest-worker", worker.run)
            # the device broker's grants follow the registry: at start, then every few minutes
            background.supervise("broker-access", lambda: keep_broker_access_in_step(app))
            # one instance drives each rollout at a time (a lease row); all run the driver;
            # a bad STOREFLEET_BALENA_* setting stops serve here with the framed refusal
            balena = getattr(app.state, "balena_settings", None) or load_balena_settings()
            app.state.balena_settings = balena
            background.supervise("rollout-driver", lambda: drive_rollouts(app))
            # effective configuration out (retained), reported config in (issue 12)
            config_link = ConfigLink(engine=engine, broker=settings.broker, tls_context=tls_context)
            app.state.config_link = config_link
            background.supervise("config-link", config_link.run)
            # changes through waves: one instance drives each at a time (a lease row, issue 12)
            background.supervise("config-change-driver", lambda: drive_changes(app))
            # fleet alerts opened and cleared each tick, lag/backlog history sampled (issue 13)
            alerting = getattr(app.state, "alert_settings", None) or EvaluatorSettings()
            background.supervise("alerts-evaluator", lambda: run_evaluator(engine, alerting))
            # the reports' rollups follow the journal off the ack path (issues 8 and 13)
            app.state.fold_worker = FoldWorker(engine=engine)
            app.state.fold_task = background.supervise("rollup-fold", app.state.fold_worker.run)
            # stock follows the journal without a reader: low-stock alerts open (issue 14)
            background.supervise("stock-catch-up", lambda: run_catch_up(engine))
            # their notifications (signed webhooks, e-mail) from the durable outbox (issue 13)
            notify = getattr(app.state, "notification_settings", None)
            notify = notify or load_notification_settings()
            app.state.notification_settings = notify
            notifier = Notifier(engine=engine, settings=notify)
            background.supervise("alert-notifier", notifier.run)
            # customers' sealed profiles and their e-mailed receipts (issue 14)
            customer_settings = getattr(app.state, "customer_settings", None)
            customer_settings = customer_settings or load_customer_settings()
            app.state.customer_settings = customer_settings
            if customer_settings.master_key_text:
                keyring = Keyring(customer_settings.master_key_text)
                app.state.customer_keyring = keyring
                mailer = ReceiptMailer(
                    engine=engine, keyring=keyring, settings=customer_settings, smtp=notify
                )
                background.supervise("receipt-mailer", mailer.run)
                # customers written before the current search terms (migration 0025)
                background.supervise(
                    "customer-reindex", lambda: keep_customers_reindexed(engine, keyring)
                )
            else:
                log.warning("customer data is off: set %s to keep customers", MASTER_KEY_VARIABLE)
            yield

    # /docs is served offline by install_offline_docs; ReDoc has no offline package
    app = FastAPI(
        title="storefleet control plane",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by install_offline_docs, to operators only
    )
    app.state.settings = settings
    app.include_router(devices_router)
    app.include_router(device_logs_router)  # logs appliances upload on request (issue 10)
    app.include_router(commands_router)
    app.include_router(sales_router)
    app.include_router(catalog_router)
    app.include_router(catalog_import_router)  # catalog files: CSV, Shopify (issue 14)
    app.include_router(provisioning_router)
    app.include_router(console_router)
    app.include_router(operators_router)  # login pages, tokens, audit (issue 9)
    app.include_router(health_router)
    app.include_router(reports_router)  # store owners' reports, charts and CSV (issue 13)
    app.include_router(alerts_router)  # fleet alerts, acknowledge, lag/backlog history (issue 13)
    app.include_router(notifications_router)  # alert channels: webhook, e-mail (issue 13)
    app.include_router(releases_router)  # signed bundles: publish, serve to devices (issue 11)
    app.include_router(rollouts_router)  # staged rollouts of a release (issue 11)
    app.include_router(rollout_pages)  # the console's releases and rollouts pages
    app.include_router(configuration_router)  # layered store configuration (issue 12)
    app.include_router(configuration_pages)  # its console: layer editor, drift, staff
    app.include_router(customers_router)  # customers, GDPR, the registers' search (issue 14)
    app.include_router(customer_pages)  # their console: list, search, one customer
    app.include_router(loyalty_router)  # loyalty ledger, adjustments (issue 14)
    app.include_router(stock_router)  # stock across stores: on-hand, transfers, reorder (issue 14)
    app.mount("/metrics", metrics_app(settings.metrics_networks))
    install_problem_handlers(app, translations={EnrolmentRefused: refusal_problem})
    document_guards(app)  # 401/403/429 and how to authenticate, on every guarded operation
    install_offline_docs(app)
    app.add_middleware(TrustedHosts, settings=settings, state=app.state)

    return app


async def _ingest_identity(app: FastAPI, settings: ControlPlaneSettings) -> ssl.SSLContext:
    """On an mTLS broker the ingest worker presents the control plane's own certificate.

    It is issued by the fleet CA (CN ``control-plane``, the ACL's one non-device user) and renewed
    here at start when due, so a long-running fleet never has to copy a key by hand.
    """
    provisioning = getattr(app.state, "provisioning_settings", None) or ProvisioningSettings()
    authority = getattr(app.state, "provisioning", None) or FleetAuthority(
        settings=provisioning, engine=app.state.engine
    )
    app.state.provisioning = authority
    ca = await authority.ca()
    return await asyncio.to_thread(ensure_control_plane_identity, ca, settings.identity_dir)
