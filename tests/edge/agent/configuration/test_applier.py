"""The applier's decisions against a scripted register: what is applied, when, and what is not.

The real agent, register and broker are in ``test_config_apply.py``; here the register is a
small script of answers (sale open or not, live reload taken or not) so each rule is one test.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from prometheus_client import REGISTRY

from edge.agent.configuration.applier import ConfigApplier
from edge.agent.configuration.files import AppliedConfig, read_applied, write_applied
from protocols.codec import encode
from protocols.messages import DesiredConfig
from protocols.store_config import key_hashes, parse_store_config
from protocols.topics import Channel, device_topic
from protocols.vocabulary import EventKind
from tests.harness.store_config import store_config_doc

ROOT = Path(__file__).resolve().parents[4]
DEVICE = "reg-applier"
TOPIC = device_topic(DEVICE, Channel.CONFIG)
GUARD_S = 10


@dataclass
class ScriptedRegister:
    """Answers as a register would; records what it was asked."""

    running_now: bool = True
    sale_open: bool = False
    takes_live: bool = True
    asked: list[str] = field(default_factory=list)
    restarts: int = 0
    held: asyncio.Event = field(default_factory=asyncio.Event)  # set at every hold asked

    def running(self) -> bool:
        return self.running_now

    async def hold(self, version: int) -> str | None:
        self.asked.append(f"hold {version}")
        self.held.set()
        return "a sale is open (1 line)" if self.sale_open else None

    async def reload(self, version: int) -> str | None:
        self.asked.append(f"reload {version}")
        return None if self.takes_live else "a section that needs a restart differs"

    def restart(self) -> None:
        self.restarts += 1


@dataclass
class Rig:
    applier: ConfigApplier
    register: ScriptedRegister
    events: list[tuple[str, dict[str, Any]]]
    changed: asyncio.Event

    def send(self, version: int, doc: dict[str, Any]) -> None:
        self.applier.receive(encode(DesiredConfig(version=version, doc=doc)), TOPIC)

    async def applied(self, version: int) -> None:
        while self.applier.version != version:
            self.changed.clear()
            await self.changed.wait()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    register = ScriptedRegister()
    events: list[tuple[str, dict[str, Any]]] = []
    changed = asyncio.Event()
    applier = ConfigApplier(
        data_dir=tmp_path,
        register=register,
        emit=lambda kind, body: events.append((kind, body)),
        on_change=changed.set,
        retry_s=0.01,
        device_id=DEVICE,
    )
    async with asyncio.timeout(GUARD_S), asyncio.TaskGroup() as tasks:
        running = tasks.create_task(applier.run())
        yield Rig(applier, register, events, changed)
        running.cancel()


def refused_count(key: str) -> float:
    value = REGISTRY.get_sample_value(
        "storefleet_agent_config_refused_total", {"device_id": DEVICE, "key": key}
    )
    return value or 0.0


async def test_the_first_configuration_restarts_a_running_register_once_held(rig: Rig) -> None:
    rig.send(2, store_config_doc())
    await rig.applied(2)
    assert rig.register.asked == ["hold 2"]
    assert rig.register.restarts == 1
    assert rig.events[-1] == (
        EventKind.CONFIG_APPLIED,
        {"version": 2, "how": "restart", "changed": sorted(rig.applier.hashes)},
    )


async def test_a_refused_resend_is_refused_once(rig: Rig) -> None:
    before = refused_count("currency")
    bad = store_config_doc(currency={"code": "Swiss francs"})
    rig.send(7, bad)
    rig.send(7, bad)  # the retained message again, at a reconnect
    assert [kind for kind, _ in rig.events] == [EventKind.CONFIG_REFUSED]
    assert rig.events[0][1]["path"] == "currency.code"
    assert refused_count("currency") == before + 1
    assert rig.applier.version == 0
    assert rig.applier.pending is None


async def test_a_malformed_message_is_counted_and_changes_nothing(rig: Rig) -> None:
    before = refused_count("$")
    rig.applier.receive(b'{"schema": "sf.config", "v": 1, "version": "two"}', TOPIC)
    rig.applier.receive(b"not json", TOPIC)
    assert refused_count("$") == before + 2
    assert rig.events == []


async def test_a_restart_waits_while_a_sale_is_open(rig: Rig) -> None:
    rig.send(2, store_config_doc())
    await rig.applied(2)
    rig.register.sale_open = True
    rig.send(3, store_config_doc(currency={"code": "EUR"}))
    while rig.register.asked.count("hold 3") < 3:  # asked again and again, never restarted
        rig.register.held.clear()
        await rig.register.held.wait()
    assert rig.applier.version == 2
    assert rig.register.restarts == 1
    assert rig.applier.waiting_for == "a sale is open (1 line)"
    rig.register.sale_open = False
    await rig.applied(3)
    assert rig.register.restarts == 2


async def test_a_live_change_the_register_cannot_take_is_applied_by_restart(rig: Rig) -> None:
    rig.send(2, store_config_doc())
    await rig.applied(2)
    rig.register.takes_live = False
    rig.send(3, store_config_doc(receipt={"footer": ["New footer"]}))
    await rig.applied(3)
    assert rig.register.asked[-2:] == ["reload 3", "hold 3"]
    assert rig.register.restarts == 2
    assert rig.events[-1][1]["how"] == "restart"


async def test_a_register_that_does_not_run_gets_the_configuration_at_once(rig: Rig) -> None:
    rig.register.running_now = False  # crashed on a bad printer setting, backing off
    rig.send(2, store_config_doc(printer={"connector": "network", "host": "10.0.0.9"}))
    await rig.applied(2)
    assert rig.register.asked == []
    assert rig.register.restarts == 1


async def test_an_older_or_equal_version_is_ignored_and_survives_a_restart(
    rig: Rig, tmp_path: Path
) -> None:
    rig.send(5, store_config_doc())
    await rig.applied(5)
    rig.send(4, store_config_doc(receipt={"footer": ["older"]}))
    rig.send(5, store_config_doc(receipt={"footer": ["same version"]}))
    assert rig.applier.pending is None
    again = ConfigApplier(data_dir=tmp_path, register=ScriptedRegister(), emit=lambda k, b: None)
    assert again.version == 5  # the agent restarted: it knows what it applied
    assert again.hashes == rig.applier.hashes
    applied = read_applied(tmp_path)
    assert applied is not None
    assert applied.config.receipt.footer == ["Merci & bis bald"]


def test_the_agent_at_rest_does_not_load_the_schema(tmp_path: Path) -> None:
    """~1.8 MB of validators wait for a configuration to arrive (the agent's goal is 40 MB)."""
    config = parse_store_config(store_config_doc())
    write_applied(tmp_path, AppliedConfig.of(3, config))
    probe = (
        "import sys; from pathlib import Path; import edge.agent.__main__\n"
        "from edge.agent.configuration.applier import ConfigApplier\n"
        f"a = ConfigApplier(data_dir=Path({str(tmp_path)!r}), register=None, emit=print)\n"
        "print(a.version, len(a.hashes), 'protocols.store_config' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    # every key's hash read back from the applied file, without the schema
    assert done.stdout.split() == ["3", str(len(key_hashes(config))), "False"]


def support_keys(rig: Rig) -> str | None:
    path = rig.applier.data_dir / "support" / "authorized_keys"
    return path.read_text() if path.exists() else None


def ssh_gauge() -> float | None:
    return REGISTRY.get_sample_value("storefleet_agent_support_ssh", {"device_id": DEVICE})


async def test_support_ssh_keys_reach_the_root_helpers_file_live_and_go_when_turned_off(
    rig: Rig,
) -> None:
    rig.send(2, store_config_doc())
    await rig.applied(2)
    assert support_keys(rig) is None  # off and never on: nothing for the helper
    key = ed25519_line()
    rig.send(3, store_config_doc(support={"ssh": True, "ssh_keys": [key]}))
    await rig.applied(3)
    assert support_keys(rig) == key + "\n"
    assert ssh_gauge() == 1
    assert rig.register.asked[-1] == "reload 3"  # live: the register never restarts for it
    assert rig.register.restarts == 1
    rig.send(4, store_config_doc(support={"ssh": False, "ssh_keys": [key]}))
    await rig.applied(4)
    assert support_keys(rig) == ""  # off: no key left for sshd, the helper stops it
    assert ssh_gauge() == 0


async def test_support_gets_in_while_a_restart_waits_for_the_open_sale(rig: Rig) -> None:
    rig.send(2, store_config_doc())
    await rig.applied(2)
    rig.register.sale_open = True
    key = ed25519_line()
    rig.send(
        3, store_config_doc(currency={"code": "EUR"}, support={"ssh": True, "ssh_keys": [key]})
    )
    while rig.register.asked.count("hold 3") < 2:
        rig.register.held.clear()
        await rig.register.held.wait()
    assert rig.applier.version == 2  # the currency waits for the sale ...
    assert support_keys(rig) == key + "\n"  # ... support's way in does not


async def test_a_refused_support_key_writes_nothing(rig: Rig) -> None:
    before = refused_count("support")
    rig.send(2, store_config_doc(support={"ssh": True, "ssh_keys": ["ssh-ed25519 AAAA broken"]}))
    assert rig.events[-1][0] == EventKind.CONFIG_REFUSED
    assert rig.events[-1][1]["path"] == "support.ssh_keys[0]"
    assert refused_count("support") == before + 1
    assert support_keys(rig) is None


def ed25519_line() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    openssh = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return openssh.decode() + " support@desk"
