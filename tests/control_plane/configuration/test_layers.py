"""Resolution of layers, by property (hypothesis) and by example: deterministic whatever the
order, higher layers win, groups by priority then id, deletion falls back, provenance names the
winning layer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.configuration.layers import (
    Layer,
    LayerIndex,
    Placement,
    Provenance,
    Setting,
    resolve,
)

KEYS = ("printer", "quick_keys", "log_level", "currency")
DEFAULTS: dict[str, Any] = {"printer": {"paper": 80}, "log_level": "info"}
PLACE = Placement(
    device_id="d-1", tenant_id="t-1", store_id="s-1", groups=frozenset({"g-a", "g-b"})
)
TARGETS = {
    Layer.TENANT: "t-1",
    Layer.STORE: "s-1",
    Layer.REGISTER: "d-1",
}


@st.composite
def settings(draw: st.DrawFn) -> list[Setting]:
    """A random set of settings on a device's layers, one per (layer, target, key)."""
    chosen: dict[tuple[Layer, str, str], Setting] = {}
    for _ in range(draw(st.integers(0, 14))):
        layer = draw(st.sampled_from([Layer.TENANT, Layer.GROUP, Layer.STORE, Layer.REGISTER]))
        target = draw(st.sampled_from(["g-a", "g-b"])) if layer is Layer.GROUP else TARGETS[layer]
        key = draw(st.sampled_from(KEYS))
        chosen[layer, target, key] = Setting(
            layer=layer,
            target=target,
            key=key,
            value=draw(st.integers(0, 1000)),
            set_by=draw(st.sampled_from(["ana@x", "bo@x"])),
            set_at=draw(st.integers(0, 10**12)),
            audit_id=draw(st.integers(1, 10**6)),
            priority={"g-a": 1, "g-b": 1}.get(target, 0) * draw(st.integers(0, 2)),
        )
    return list(chosen.values())


def _strongest(found: list[Setting], key: str) -> Setting | None:
    candidates = [s for s in found if s.key == key]
    if not candidates:
        return None
    return max(candidates, key=lambda s: (s.layer.rank, s.priority, [-ord(c) for c in s.target]))


@given(settings(), st.randoms())
def test_resolution_is_deterministic_whatever_the_order(found: list[Setting], rnd: Any) -> None:
    shuffled = list(found)
    rnd.shuffle(shuffled)
    assert resolve(DEFAULTS, found) == resolve(DEFAULTS, shuffled)


@given(settings())
def test_the_highest_layer_wins_and_provenance_names_it(found: list[Setting]) -> None:
    effective = resolve(DEFAULTS, found)
    for key in KEYS:
        winner = _strongest(found, key)
        if winner is None:
            assert effective.document.get(key) == DEFAULTS.get(key)
            if key in DEFAULTS:
                assert effective.provenance[key].layer is Layer.PLATFORM
            else:
                assert key not in effective.provenance
            continue
        assert effective.document[key] == winner.value
        assert effective.provenance[key] == winner.provenance()
        # nothing stronger for that key exists at a higher layer
        assert all(s.layer.rank <= winner.layer.rank for s in found if s.key == key)


@given(settings(), st.data())
def test_deleting_the_winner_falls_back_to_the_next_one_down(
    found: list[Setting], data: st.DataObject
) -> None:
    if not found:
        return
    effective = resolve(DEFAULTS, found)
    key = data.draw(st.sampled_from(sorted({s.key for s in found})))
    winner = _strongest(found, key)
    assert winner is not None
    rest = [s for s in found if s is not winner]
    after = resolve(DEFAULTS, rest)
    runner_up = _strongest(rest, key)
    expected = runner_up.value if runner_up else DEFAULTS.get(key)
    assert after.document.get(key) == expected
    assert effective.document.get(key) == winner.value
    # the other keys are untouched
    for other in KEYS:
        if other != key:
            assert after.document.get(other) == effective.document.get(other)


def _setting(layer: Layer, target: str, value: object, *, priority: int = 0) -> Setting:
    return Setting(
        layer=layer,
        target=target,
        key="log_level",
        value=value,
        set_by="ana@x",
        set_at=1,
        audit_id=7,
        priority=priority,
    )


@pytest.mark.parametrize(
    ("groups", "winner"),
    [
        pytest.param([("g-a", 0), ("g-b", 5)], "g-b", id="higher-priority-wins"),
        pytest.param([("g-b", 3), ("g-a", 3)], "g-a", id="tie-the-id-sorting-first-wins"),
    ],
)
def test_two_groups_of_one_store(groups: list[tuple[str, int]], winner: str) -> None:
    found = [_setting(Layer.GROUP, name, name, priority=priority) for name, priority in groups]
    effective = resolve(DEFAULTS, found)
    assert effective.document["log_level"] == winner
    assert effective.provenance["log_level"].target == winner


def test_the_index_picks_only_the_devices_layers() -> None:
    found = [
        _setting(Layer.TENANT, "t-1", "tenant"),
        _setting(Layer.TENANT, "t-2", "other tenant"),
        _setting(Layer.STORE, "s-2", "other store"),
        _setting(Layer.GROUP, "g-z", "group of another store"),
        _setting(Layer.REGISTER, "d-2", "other register"),
    ]
    effective = LayerIndex(found).resolve(PLACE, DEFAULTS)
    assert effective.document["log_level"] == "tenant"
    assert effective.provenance["log_level"].target == "t-1"


def test_provenance_round_trips_through_json() -> None:
    original = Provenance(layer=Layer.GROUP, target="g-a", set_by="x", set_at=5, audit_id=None)
    assert Provenance.from_json(original.as_json()) == original
