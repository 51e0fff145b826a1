"""Transfer bodies: what a register writes, the cloud reads; a wrong one is refused by name."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.epc import gtin_check_digit
from protocols.stock_transfer import (
    InvalidTransferBody,
    is_gtin14,
    transfer_received,
    transfer_sent,
)

MILK14 = "07610200000019"


def _gtin(stem: int) -> str:
    digits = f"{stem:013d}"
    return digits + str(gtin_check_digit(digits))


lines = st.dictionaries(
    st.integers(0, 10**13 - 1).map(_gtin), st.integers(1, 1_000_000), min_size=1, max_size=20
)


@given(lines=lines, to_store=st.from_regex(r"[a-z0-9-]{1,64}", fullmatch=True))
def test_a_sent_body_round_trips(lines: dict[str, int], to_store: str) -> None:
    body = {
        "transfer_id": "T-1-ABC",
        "to_store": to_store,
        "lines": [{"gtin": g, "quantity": q} for g, q in lines.items()],
        "by": "E01",
    }
    sent = transfer_sent(body)
    assert sent.to_body() == body
    assert sent.units() == lines


def test_a_received_body_may_leave_out_the_sender() -> None:
    received = transfer_received({"transfer_id": "T-1", "lines": [{"gtin": MILK14, "quantity": 3}]})
    assert received.from_store is None
    assert received.units() == {MILK14: 3}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param({"transfer_id": "T", "to_store": "s", "lines": []}, "lines", id="no-lines"),
        pytest.param(
            {"transfer_id": "T", "to_store": "s", "lines": [{"gtin": MILK14, "quantity": 0}]},
            "lines.0.quantity",
            id="zero",
        ),
        pytest.param(
            {"transfer_id": "T", "to_store": "s", "lines": [{"gtin": MILK14, "quantity": 1.0}]},
            "lines.0.quantity",
            id="float",
        ),
        pytest.param(
            {
                "transfer_id": "T",
                "to_store": "s",
                "lines": [{"gtin": MILK14[:-1] + "8", "quantity": 1}],
            },
            "lines.0.gtin",
            id="check-digit",
        ),
        pytest.param(
            {
                "transfer_id": "T",
                "to_store": "s",
                "lines": [{"gtin": MILK14, "quantity": 1}, {"gtin": MILK14, "quantity": 2}],
            },
            "lines",
            id="gtin-twice",
        ),
        pytest.param(
            {"transfer_id": "T", "lines": [{"gtin": MILK14, "quantity": 1}]},
            "to_store",
            id="no-destination",
        ),
        pytest.param("not a body", "body", id="not-a-mapping"),
    ],
)
def test_a_wrong_sent_body_is_refused_by_name(body: Any, where: str) -> None:
    with pytest.raises(InvalidTransferBody) as refused:
        transfer_sent(body)
    assert f"invalid at {where}:" in refused.value.reason


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        (MILK14, True),
        ("07610200000018", False),
        ("7610200000019", False),
        ("0761020000001x", False),
    ],
)
def test_gtin14_check(code: str, ok: bool) -> None:
    assert is_gtin14(code) is ok
