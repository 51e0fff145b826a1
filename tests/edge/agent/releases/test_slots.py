"""slots.json and the current link: replaced whole; a slot still on trial at boot is reverted."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from edge.agent.releases.manager import recover_at_boot, register_command
from edge.agent.releases.slots import Attempt, SlotState, SlotStore
from edge.agent.settings import FleetAgentSettings

ATTEMPT = Attempt(
    key="k1", version="2.0.0", rollout="r-1", state="confirming", since=1.0, deadline=2.0, slot="b"
)


def test_an_absent_state_file_is_the_images_package(tmp_path: Path) -> None:
    state = SlotStore(tmp_path / "app").load()

    assert (state.active, state.committed, state.inactive) == (None, None, "a")


def test_the_state_round_trips_and_current_follows_the_active_slot(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "app")
    saved = store.save(
        SlotState(active="b", committed="a", versions={"a": "1", "b": "2"}, attempt=ATTEMPT)
    )

    assert store.load() == saved
    assert (tmp_path / "app" / "current").resolve() == tmp_path / "app" / "slots" / "b"
    assert not list((tmp_path / "app").glob(".*.new"))  # written by rename, nothing left over


def test_a_new_release_never_goes_into_the_active_or_the_committed_slot() -> None:
    assert SlotState(active="a", committed="a").inactive == "b"
    assert SlotState(active="b", committed="b").inactive == "a"
    assert SlotState(active=None, committed=None).inactive == "a"


def test_a_slot_on_trial_when_the_agent_stopped_is_reverted_at_boot(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "app")
    store.save(
        SlotState(
            active="b",
            committed="a",
            trying="b",
            previous="a",
            versions={"a": "1.0.0", "b": "2.0.0"},
            attempt=ATTEMPT,
        )
    )

    state, reverted = recover_at_boot(store)

    assert reverted == ATTEMPT
    assert (state.active, state.committed, state.trying, state.previous) == ("a", "a", None, "b")
    assert state.last_failed == "k1"  # not retried until the cloud sends another desire
    assert json.loads(store.path.read_text())["active"] == "a"
    assert (tmp_path / "app" / "current").resolve() == tmp_path / "app" / "slots" / "a"


def test_a_first_release_on_trial_goes_back_to_the_images_package(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "app")
    store.save(SlotState(active="a", trying="a", versions={"a": "2.0.0"}, attempt=ATTEMPT))

    state, _ = recover_at_boot(store)

    assert state.active is None
    assert not (tmp_path / "app" / "current").exists()


def test_a_committed_slot_boots_as_it_is(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "app")
    committed = store.save(SlotState(active="b", committed="b", versions={"b": "2.0.0"}))
    (tmp_path / "app" / "current").unlink()  # a cut between the file and the link

    state, reverted = recover_at_boot(store)

    assert (state, reverted) == (committed, None)
    assert (tmp_path / "app" / "current").resolve() == tmp_path / "app" / "slots" / "b"


def test_a_slots_register_runs_the_slots_code_only(tmp_path: Path) -> None:
    settings = FleetAgentSettings(device_id="reg-slots", data_dir=tmp_path)
    slot = tmp_path / "app" / "slots" / "a"
    (slot / "bin").mkdir(parents=True)
    (slot / "bin" / "python").touch()
    base = {"PYTHONPATH": "/checkout", "HOME": "/root"}

    argv, env = register_command(settings, slot, base)
    image_argv, image_env = register_command(settings, None, base)

    assert argv == [str(slot / "bin" / "python"), "-m", "edge.cli", "register"]
    assert env == {"HOME": "/root"}  # a development checkout must not shadow the release
    assert image_argv[1:] == ["-m", "edge.cli", "register"]
    assert image_env == base


def test_unknown_keys_in_a_newer_state_file_are_ignored(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "app")
    store.save(SlotState(active="a", committed="a"))
    raw = json.loads(store.path.read_text()) | {"from_the_future": 1}
    store.path.write_text(json.dumps(raw))

    assert store.load() == replace(SlotState(), active="a", committed="a")
