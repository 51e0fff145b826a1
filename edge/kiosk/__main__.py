"""``python -m edge.kiosk``: the register with its kiosk, for the demo and the appliance image.

Settings come from ``STOREFLEET_EDGE_*`` (``STOREFLEET_EDGE_DEVICE_ID``, or
``STOREFLEET_EDGE_IDENTITY_DIR`` for the first-boot enrolment screen); options say
where the kiosk listens and whether to replicate and sync the catalog.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path

from edge.kiosk.run import RegisterOptions, run_register
from edge.pos.store_config import DEMO_CATALOG, DEMO_STORE
from edge.settings import EdgeSettings


def main() -> None:
    """Parse options and run until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m edge.kiosk", description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="kiosk port on loopback")
    parser.add_argument("--store", type=Path, default=DEMO_STORE, help="store config JSON")
    parser.add_argument("--catalog", type=Path, default=DEMO_CATALOG, help="catalog snapshot")
    parser.add_argument("--offline", action="store_true", help="do not replicate to a broker")
    parser.add_argument("--not-enrolled", action="store_true", help="show the first-run screen")
    parser.add_argument("--catalog-url", help="control plane URL for catalog changes")
    parser.add_argument("--tenant-id", help="tenant whose catalog to follow")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    options = RegisterOptions(
        kiosk_port=args.port,
        store_config=args.store,
        catalog_snapshot=args.catalog,
        replicate=not args.offline,
        enrolled=not args.not_enrolled,
        catalog_url=args.catalog_url,
        tenant_id=args.tenant_id,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_register(EdgeSettings(), options))


if __name__ == "__main__":
    main()
