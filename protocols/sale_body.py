"""The body of a ``sale.completed`` journal record: what the register writes and the cloud reads.

How it works: the appliance's ledger builds a :class:`SaleBody` from the sale it is committing and
journals :meth:`SaleBody.to_body`; the cloud's ingest validates each ``sale.completed`` body with
:meth:`SaleBody.from_body` before it books the sale. Both sides use this one model, so a sale the
register can commit is a sale the cloud can store, and a body that is not one (a missing total, a
currency the cloud's column cannot hold, totals that do not add up) is refused by name instead of
being booked as 0 or blocking replication in the database.

Money is integer minor units (``Int64``: what a ``BIGINT`` holds); quantities are Decimals written
as strings (``"0.500"``), because the body is hashed and a float has no single text form. Keys
beside the summary (``checkout``: the register's full record; anything in the draft's ``extra``)
are kept as they are: the cloud stores the body byte for byte, it does not own those keys.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from protocols.limits import (
    INT64_MAX,
    CurrencyCode,
    Identifier,
    Int64,
    Label,
    Seq,
    Text,
)

#: Longest quantity text: plenty for "123456.789", bounded so a body cannot carry a huge number.
QUANTITY_LENGTH = 32


class InvalidSaleBody(ValueError):  # noqa: N818 - named in the domain's words
    """A ``sale.completed`` body that is not a sale; ``reason`` names the first wrong field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _quantity(value: object) -> Decimal:
    """A quantity is a finite, non-zero Decimal written as a string (never a JSON number)."""
    if isinstance(value, Decimal):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError('a quantity must be a decimal string such as "1" or "0.500"')
    if len(text) > QUANTITY_LENGTH:
        raise ValueError(f"a quantity has at most {QUANTITY_LENGTH} characters")
    try:
        quantity = Decimal(text)
    except InvalidOperation as err:
        raise ValueError(f"{text!r} is not a decimal number") from err
    if not quantity.is_finite() or quantity == 0:
        raise ValueError("a quantity must be finite and not zero")
    return quantity


#: A Decimal on the model, its ``str()`` in the body: exactly the text the register hashed.
Quantity = Annotated[Decimal, BeforeValidator(_quantity), PlainSerializer(str, return_type=str)]
#: A tender pays something: a positive amount.
PositiveMinor = Annotated[int, Field(strict=True, gt=0, le=INT64_MAX)]
#: Change handed back: never negative.
ChangeMinor = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]


class SaleBodyLine(BaseModel):
    """One line: ``amount_minor`` is what the customer paid for it, discounts and tax included."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: Annotated[Label, Field(min_length=1)]
    description: Text
    quantity: Quantity
    unit_price_minor: Int64
    amount_minor: Int64


class SaleBodyTender(BaseModel):
    """A payment; ``reference`` is the terminal's, never a card number."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Identifier
    amount_minor: PositiveMinor
    reference: Label | None = None


class SaleBody(BaseModel):
    """The summary every consumer of ``sale.completed`` relies on (other keys are kept aside)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    sale_id: Identifier
    register_id: Identifier
    receipt_no: Seq
    currency: CurrencyCode
    total_minor: Int64
    tendered_minor: Int64
    change_minor: ChangeMinor
    lines: Annotated[list[SaleBodyLine], Field(min_length=1)]
    tenders: list[SaleBodyTender]
    checkout: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _adds_up(self) -> Self:
        """The figures are the sale's own sums; a body that disagrees with itself is refused."""
        lines = sum(line.amount_minor for line in self.lines)
        if self.total_minor != lines:
            raise ValueError(f"total_minor {self.total_minor} is not the sum of the lines {lines}")
        tendered = sum(tender.amount_minor for tender in self.tenders)
        if self.tendered_minor != tendered:
            raise ValueError(
                f"tendered_minor {self.tendered_minor} is not the sum of the tenders {tendered}"
            )
        if tendered < self.total_minor:
            raise ValueError(f"tenders {tendered} do not cover the total {self.total_minor}")
        if self.change_minor != tendered - self.total_minor:
            raise ValueError(
                f"change_minor {self.change_minor} is not tendered − total"
                f" ({tendered - self.total_minor})"
            )
        return self

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> SaleBody:
        """Validate a journal body; raises :class:`InvalidSaleBody` naming the first fault."""
        try:
            return cls.model_validate(body)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise InvalidSaleBody(
                f"sale.completed body invalid at {where}: {first['msg']}"
            ) from err

    def to_body(self) -> dict[str, Any]:
        """The journal body: the summary, ``checkout`` when given, then the extra keys.

        Python mode, not JSON mode: values under ``checkout`` and the extra keys pass through
        untouched, so a float or a Decimal there still meets the canonical check that refuses it
        instead of being quietly turned into a string.
        """
        return self.model_dump(exclude={"checkout"} if self.checkout is None else None)
