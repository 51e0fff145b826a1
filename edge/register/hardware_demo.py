"""See a register's hardware run: the simulated preset, the hub and the agent on a real broker.

    python -m edge.register.hardware_demo --broker mqtt://127.0.0.1:1883 --device demo-register

It starts the simulators, prints one receipt (``receipt-000001.png`` in ``--dir``), opens the
drawer (journaled), and then serves commands and publishes state until Ctrl-C. Watch and drive
it from another shell::

    mosquitto_sub -t 'sf/v1/d/demo-register/#' -v
    mosquitto_pub -t sf/v1/d/demo-register/cmd -m \\
      '{"schema":"sf.cmd","v":1,"id":"c1","name":"stock_count.start","args":{"session_id":"C-1"}}'
    mosquitto_pub -t sf/v1/d/demo-register/cmd -m \\
      '{"schema":"sf.cmd","v":1,"id":"c2","name":"stock_count.stop","args":{"session_id":"C-1"}}'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path

from edge.agent.session import AgentSettings
from edge.ledger import Ledger
from edge.peripherals.receipt_adapter import HubReceiptPrinter
from edge.peripherals.register_config import RegisterDevices
from edge.peripherals.register_peripherals import open_register_peripherals
from edge.register.hub_commands import agent_for_hub
from protocols.broker_url import parse_broker_url

log = logging.getLogger("edge.register.hardware_demo")

DEMO_RECEIPT = """\
          storefleet demo market
------------------------------------------
Receipt 1-000001          2026-11-21 09:00
------------------------------------------
Whole milk 1 l                      1.75 B
Coffee beans 500 g                 12.90 B
------------------------------------------
TOTAL CHF                            14.65
Cash                                 20.00
Change                                5.35
"""


async def run_demo(*, broker_url: str, device_id: str, workdir: Path) -> None:
    """Run until cancelled."""
    devices = RegisterDevices(preset="simulated")
    async with (
        Ledger(workdir / "ledger.db", register_id="1") as ledger,
        open_register_peripherals(devices, journal=ledger, data_dir=workdir) as hub,
    ):
        printer = HubReceiptPrinter(hub=hub, register_id="1")
        job_id = await printer.submit_text(DEMO_RECEIPT, receipt_no=1)
        await hub.require_printer().wait_for(job_id, lambda j: j.state == "printed")
        image = await printer.receipt_image(1)
        if image is not None:
            (workdir / "receipt-000001.png").write_bytes(image)
        opened = await hub.open_drawer(reason="demo: no sale", by="demo")
        log.info("receipt printed, drawer opened (journal seq %d)", opened.seq)
        agent = agent_for_hub(
            device_id=device_id,
            broker=parse_broker_url(broker_url),
            hub=hub,
            journal=ledger,
            app_release="demo",
            settings=AgentSettings(state_interval_s=10),
        )
        log.info("agent for %s on %s; health: %s", device_id, broker_url, sorted(hub.health()))
        await agent.run()


def main() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--device", default="demo-register")
    parser.add_argument("--dir", type=Path, default=Path("storefleet-hub-demo"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", force=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(broker_url=args.broker, device_id=args.device, workdir=args.dir))


if __name__ == "__main__":
    main()
