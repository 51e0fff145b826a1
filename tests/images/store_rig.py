"""What an appliance VM meets in its store: a control plane and broker on the host, reached as
10.0.2.2 through qemu's user network, and the touchscreen's API through the forwarded port.

Shared by tests/images/test_appliance_fleet.py and bench/image.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from control_plane.configuration import service, staff
from control_plane.configuration.layers import Layer
from control_plane.sales.tables import sales
from provisioning.ca import CertificateAuthority
from provisioning.enrolment import encode_qr, parse_qr
from tests.control_plane.configuration.config_harness import ANA, TENANT_KEYS, store_identity
from tests.control_plane.provisioning.fleet_harness import (
    HOST,
    STORE,
    TENANT,
    Fleet,
    MtlsBroker,
    seed_demo_catalog,
    served_fleet,
)
from tests.harness.store_config import store_config_doc

#: the host as qemu's user network shows it to the guest
VM_HOST = "10.0.2.2"
MILK = "7610200000019"  # the demo catalog's whole milk, tax class B
PIN = "4826"


@dataclass
class Store:
    """The fleet as the appliance sees it: the control plane, the broker, the cashier's id."""

    fleet: Fleet
    broker: MtlsBroker
    cashier: str


@asynccontextmanager
async def store_for_appliance(ca: CertificateAuthority, directory: Path) -> AsyncIterator[Store]:
    """The control plane and broker an appliance VM enrols with, the store configured for it
    (tenant currency, tax and hours, the store's identity, one cashier) and the demo catalog."""
    broker = MtlsBroker(directory / "broker", ca=ca, also_known_as=(VM_HOST,))
    broker.start()
    try:
        async with served_fleet(
            database_url=f"sqlite+aiosqlite:///{directory / 'cloud.db'}",
            ingest_broker_url=broker.service_url,  # ingest and configuration link over mTLS
            ca_directory=ca.directory,
            device_broker_url=f"mqtts://{VM_HOST}:{broker.port}",
            service_broker_url=broker.service_url,
            crl_file=broker.files.crlfile,
            # HTTPS, as the appliance insists off localhost; the broker's certificate (the fleet
            # CA's, for localhost, 127.0.0.1 and 10.0.2.2) serves the control plane's name too
            https=(broker.files.certfile, broker.files.keyfile, broker.files.cafile),
            identity_dir=directory / "control-plane-identity",
            allowed_hosts=f"localhost,{HOST},{VM_HOST}",  # the Host header the VM sends
        ) as fleet:
            engine = fleet.engine
            tenant_keys = TENANT_KEYS | {"tax": store_config_doc()["tax"]}  # classes A, B, Z
            for key, value in tenant_keys.items():
                await service.set_setting(
                    engine, actor=ANA, layer=Layer.TENANT, target=TENANT, key=key, value=value
                )
            await service.set_setting(
                engine,
                actor=ANA,
                layer=Layer.STORE,
                target=STORE,
                key="store",
                value=store_identity(STORE),
            )
            cashier = await staff.add_staff(
                engine, actor=ANA, store_id=STORE, name="Mira", role="cashier", pin=PIN
            )
            await seed_demo_catalog(fleet)
            yield Store(fleet=fleet, broker=broker, cashier=cashier.id)
    finally:
        broker.stop()


class Kiosk:
    """The touchscreen's API through qemu's forwarded port."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def state(self) -> dict[str, Any] | None:
        """The register's state; None while nothing answers (booting, restarting)."""
        try:
            answer = await self.client.get("/api/state")
        except httpx.TransportError:
            return None
        body: dict[str, Any] | None = answer.json() if answer.status_code == 200 else None
        return body

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.client.post(f"/api/{path}", json=body)
        assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text}"
        state: dict[str, Any] = answer.json()["state"]
        return state

    async def scanned(self) -> bool:
        """Milk scanned onto the cart (False while the catalog has not come from the cloud)."""
        answer = await self.client.post("/api/scan", json={"code": MILK})
        return answer.status_code == 200

    async def sell_milk(self, *, scanned: bool = False) -> str:
        """Scan, pay exact cash; the receipt id the register answered (the sale committed)."""
        if not scanned:
            await self.post("scan", {"code": MILK})
        due = (await self.post("pay/start", {}))["register"]["payment"]["cash_due"]["minor"]
        paid = await self.post("pay/cash", {"received_minor": due})
        receipt: str = paid["register"]["receipt"]["id"]
        return receipt


async def shows(kiosk: Kiosk, check: Any) -> bool:
    state = await kiosk.state()
    return state is not None and bool(check(state))


def staff_ready(state: dict[str, Any]) -> bool:
    """Enrolled, configured by the control plane, ready to sign a cashier in."""
    return bool(state.get("enrolled")) and bool((state.get("register") or {}).get("employees"))


async def cloud_receipts(fleet: Fleet, device_id: str) -> list[int]:
    query = select(sales.c.receipt_no).where(sales.c.device_id == device_id)
    async with fleet.engine.connect() as conn:
        return sorted(int(row.receipt_no) for row in await conn.execute(query))


def ledger_from_disk(disk: Path, directory: Path) -> Path:
    """The ledger files copied off the powered-off disk's data partition (debugfs, read-only)."""
    layout = subprocess.run(
        ["sfdisk", "--dump", str(disk)], capture_output=True, text=True, check=True
    ).stdout
    line = next(row for row in layout.splitlines() if 'name="data"' in row)
    fields = dict(f.strip().split("=", 1) for f in line.split(":", 1)[1].split(","))
    start, size = int(fields["start"]), int(fields["size"])
    data = directory / "data.img"
    subprocess.run(
        ["dd", f"if={disk}", f"of={data}", "bs=512", f"skip={start}", f"count={size}",
         "conv=sparse", "status=none"],
        check=True,
    )  # fmt: skip
    out = directory / "ledger"
    out.mkdir()
    for name in ("ledger.db", "ledger.db-wal"):
        subprocess.run(
            ["debugfs", "-R", f"dump /storefleet/{name} {out / name}", str(data)],
            check=True,
            capture_output=True,
        )
    return out / "ledger.db"


def vm_qr(fleet: Fleet, printed: str) -> str:
    """The printed QR with the control plane's URL as the store's network (qemu) reaches it."""
    payload = parse_qr(printed)
    return encode_qr(
        payload.model_copy(update={"control_plane_url": fleet.url.replace(HOST, VM_HOST)})
    )


async def replicated(fleet: Fleet, device_id: str, n: int) -> bool:
    """At least ``n`` sales of the device stored by the cloud."""
    return len(await cloud_receipts(fleet, device_id)) >= n
