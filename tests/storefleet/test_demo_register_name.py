"""The demo's console and kiosks agree on a register's name: one source, the store document."""

from __future__ import annotations

from pathlib import Path

from control_plane.db.engine import make_engine, migrate
from control_plane.demo import device_id_for
from control_plane.devices import service as registry
from edge.pos.store_config import load_store_config
from edge.settings import EdgeSettings
from storefleet.demo import seed_demo


async def test_seeded_registers_carry_the_name_the_kiosk_shows(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}")
    try:
        await migrate(engine)
        await seed_demo(engine, 2)
        device = await registry.get_device(engine, device_id=device_id_for(2))
    finally:
        await engine.dispose()
    register_id = EdgeSettings(device_id=device_id_for(2)).register_id  # what the demo runs
    kiosk_name = load_store_config().register_name(register_id)
    assert device["register_name"] == kiosk_name == "Till 1"
