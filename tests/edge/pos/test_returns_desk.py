"""Receipt numbers typed or scanned at the returns desk."""

from __future__ import annotations

import pytest

from edge.pos.errors import ReceiptNotFound
from edge.pos.register import Register
from edge.pos.returns_desk import parse_receipt


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param("4\u00b2", id="superscript-two"),
        pytest.param("\u0664\u0662", id="arabic-indic"),
        pytest.param("0", id="zero"),
        pytest.param("other-42", id="foreign-register"),
    ],
)
async def test_a_receipt_number_that_is_not_ours_is_not_found(
    register: Register, typed: str
) -> None:
    """Regression: a superscript passed str.isdigit() and int() raised a bare ValueError."""
    with pytest.raises(ReceiptNotFound):
        parse_receipt(register, typed)


async def test_a_receipt_number_with_our_prefix_is_read(register: Register) -> None:
    assert parse_receipt(register, f"{register.register_id}-000042") == 42
