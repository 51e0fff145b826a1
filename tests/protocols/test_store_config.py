"""The store configuration schema: what it accepts, what it refuses and why, its hashes and size."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.store_config import (
    APPLY,
    SECTIONS,
    SIZE_BUDGET,
    ApplyMode,
    StoreConfigRefused,
    changed_sections,
    encoded,
    key_hashes,
    normalised,
    parse_store_config,
    store_config_json_schema,
)
from tests.harness.store_config import pin_hash, store_config_doc

# -- what it takes ---------------------------------------------------------------------------------


def test_a_store_document_parses_with_its_values() -> None:
    config = parse_store_config(store_config_doc())
    assert config.store.name == "Lindenhof Bakery"
    assert config.currency.cash_increment_minor == 5
    assert str(config.tax.classes[0].rate_decimal) == "0.081"
    assert [m.role for m in config.staff.members] == ["cashier", "cashier", "manager"]
    assert config.quick_keys.categories[0].keys[1].sku == "SKU-00006"


def test_the_normalised_document_parses_to_the_same_config() -> None:
    config = parse_store_config(store_config_doc())
    again = parse_store_config(normalised(config))
    assert again == config
    assert key_hashes(again) == key_hashes(config)


def test_every_section_is_hashed_and_has_an_apply_mode() -> None:
    hashes = key_hashes(parse_store_config(store_config_doc()))
    assert set(hashes) == set(SECTIONS) == set(APPLY)
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in hashes.values())


def test_a_default_left_out_hashes_like_the_default_written_out() -> None:
    bare = store_config_doc()
    bare.pop("receipt")
    written = store_config_doc(receipt={"header": [], "footer": []})
    assert key_hashes(parse_store_config(bare)) == key_hashes(parse_store_config(written))


def test_a_changed_footer_changes_only_the_receipt_hash() -> None:
    before = parse_store_config(store_config_doc())
    after = parse_store_config(store_config_doc(receipt={"footer": ["Closed on Sundays"]}))
    assert changed_sections(before, after) == {"receipt"}
    assert changed_sections(None, after) == set(SECTIONS)


@pytest.mark.parametrize(
    ("section", "mode"),
    [
        pytest.param("printer", ApplyMode.RESTART, id="printer-restarts"),
        pytest.param("currency", ApplyMode.RESTART, id="currency-restarts"),
        pytest.param("quick_keys", ApplyMode.LIVE, id="quick-keys-live"),
        pytest.param("staff", ApplyMode.LIVE, id="staff-live"),
        pytest.param("receipt", ApplyMode.LIVE, id="footer-live"),
    ],
)
def test_apply_modes(section: str, mode: ApplyMode) -> None:
    assert APPLY[section] is mode


# -- what it refuses, and what it says -------------------------------------------------------------


def _with(path: list[str | int], value: Any) -> dict[str, Any]:
    doc = store_config_doc()
    target: Any = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "key", "path", "says"),
    [
        pytest.param(
            store_config_doc(colour_scheme="dark"),
            "colour_scheme",
            "colour_scheme",
            "Extra inputs",
            id="unknown-key",
        ),
        pytest.param(
            _with(["tax", "classes", 0, "rate"], 0.081),
            "tax",
            "tax.classes[0].rate",
            "write money as minor units or a string",
            id="float-rate",
        ),
        pytest.param(
            _with(["tax", "classes", 0, "rate"], "8.1"),
            "tax",
            "tax.classes[0].rate",
            "pattern",
            id="rate-as-percent",
        ),
        pytest.param(
            _with(["staff", "members", 0, "pin_hash"], "2468"),
            "staff",
            "staff.members[0].pin_hash",
            "never send the PIN",
            id="plain-pin",
        ),
        pytest.param(
            _with(
                ["staff", "members", 0, "pin_hash"],
                pin_hash("2468").replace("m=8,", "m=1048576,"),
            ),
            "staff",
            "staff.members[0].pin_hash",
            "outside what a register verifies",
            id="pin-hash-too-costly",
        ),
        pytest.param(
            _with(["staff", "members", 1, "id"], "C01"),
            "staff",
            "staff.members",
            "C01 appear twice",
            id="staff-id-twice",
        ),
        pytest.param(
            _with(["hours", "time_zone"], "Mars/Olympus"),
            "hours",
            "hours.time_zone",
            "not an IANA time zone",
            id="time-zone",
        ),
        pytest.param(
            _with(["hours", "week", "mon"], [{"opens": "18:00", "closes": "07:00"}]),
            "hours",
            "hours.week.mon[0]",
            "must be after opens",
            id="closes-before-opens",
        ),
        pytest.param(
            store_config_doc(printer={"connector": "network"}),
            "printer",
            "printer",
            "needs host",
            id="printer-without-host",
        ),
        pytest.param(
            _with(["quick_keys", "categories", 0, "keys", 0, "colour"], "red"),
            "quick_keys",
            "quick_keys.categories[0].keys[0].colour",
            "pattern",
            id="colour-not-hex",
        ),
        pytest.param(
            _with(["currency", "code"], "chf"),
            "currency",
            "currency.code",
            "pattern",
            id="currency-lowercase",
        ),
        pytest.param(
            _with(["currency", "exponent"], "2"),
            "currency",
            "currency.exponent",
            "integer",
            id="exponent-as-string",
        ),
        pytest.param(
            {k: v for k, v in store_config_doc().items() if k != "store"},
            "store",
            "store",
            "Field required",
            id="no-store",
        ),
    ],
)
def test_refused_with_key_path_and_reason(
    doc: dict[str, Any], key: str, path: str, says: str
) -> None:
    with pytest.raises(StoreConfigRefused) as refused:
        parse_store_config(doc)
    assert refused.value.key == key
    assert refused.value.path == path
    assert says in refused.value.reason


def test_not_an_object_is_refused() -> None:
    with pytest.raises(StoreConfigRefused, match="JSON object"):
        parse_store_config(["store"])


def test_over_the_budget_is_refused_naming_the_largest_key() -> None:
    keys = [{"label": f"Item {i}", "colour": "#123456", "sku": f"sku-{i:05d}"} for i in range(48)]
    categories = [{"name": f"Tab {t}", "keys": keys} for t in range(12)]
    doc = store_config_doc(quick_keys={"categories": categories})
    assert len(encoded(doc)) > SIZE_BUDGET
    with pytest.raises(StoreConfigRefused, match="over the budget") as refused:
        parse_store_config(doc)
    assert refused.value.key == "quick_keys"


# -- properties ------------------------------------------------------------------------------------

_printable = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"),
    min_size=1,
    max_size=30,
)
_quick_key = st.fixed_dictionaries(
    {
        "label": _printable,
        "colour": st.integers(0, 0xFFFFFF).map(lambda n: f"#{n:06x}"),
        "sku": st.integers(0, 10**9).map(lambda n: f"sku-{n}"),
    }
)
_categories = st.lists(
    st.fixed_dictionaries(
        {"name": _printable, "keys": st.lists(_quick_key, max_size=48)},
    ),
    max_size=12,
    unique_by=lambda c: c["name"],
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    categories=_categories,
    footer=st.lists(_printable, max_size=8),
    features=st.dictionaries(st.from_regex(r"\A[a-z_]{1,20}\Z"), st.booleans(), max_size=10),
)
def test_round_trip_or_refused_over_budget(
    categories: list[dict[str, Any]], footer: list[str], features: dict[str, bool]
) -> None:
    doc = store_config_doc(
        quick_keys={"categories": categories}, receipt={"footer": footer}, features=features
    )
    if len(encoded(doc)) > SIZE_BUDGET:
        with pytest.raises(StoreConfigRefused, match="over the budget"):
            parse_store_config(doc)
        return
    config = parse_store_config(doc)
    assert [k.label for c in config.quick_keys.categories for k in c.keys] == [
        k["label"] for c in categories for k in c["keys"]
    ]
    again = parse_store_config(copy.deepcopy(normalised(config)))
    assert again == config
    assert key_hashes(again) == key_hashes(config)


# -- the published JSON Schema ---------------------------------------------------------------------


def test_json_schema_documents_every_key_and_its_apply_mode() -> None:
    schema = store_config_json_schema()
    assert set(schema["properties"]) == set(SECTIONS)
    assert schema["x-size-budget-bytes"] == SIZE_BUDGET
    assert set(schema["required"]) == {"store", "currency", "tax", "hours"}
    undocumented = [
        f"{where}.{name}"
        for where, model in [("$", schema), *schema["$defs"].items()]
        for name, prop in model.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undocumented == []
    assert {p["x-apply"] for p in schema["properties"].values()} == {"live", "restart"}
