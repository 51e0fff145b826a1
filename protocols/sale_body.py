"""The body of a ``sale.completed`` journal record: what the register writes and the cloud reads.

How it works: the appliance's ledger builds a :class:`SaleBody` from the sale it is committing and
journals :meth:`SaleBody.to_body`; the cloud's ingest validates each ``sale.completed`` body with
:meth:`SaleBody.from_body` before it books the sale. Both sides use this one model, so a sale the
register can commit is a sale the cloud can store, and a body that is not one (a missing total, a
currency the cloud's column cannot hold, totals that do not add up) is refused by name instead of
being booked as 0 or blocking replication in the database.

Money is integer minor units (``Int64``: what a ``BIGINT`` holds); quantities are Decimals written
as strings (``"0.500"``, read back with :func:`quantity`), because the body is hashed and a float
has no single text form. Keys
beside the summary (``checkout``: the register's full record; anything in the draft's ``extra``)
are kept as they are: the cloud stores the body byte for byte, it does not own those keys.

A sale with a customer (issue 14) names it in ``customer_id`` (pseudonymous, see
:mod:`protocols.customer_card`) and carries its loyalty movements in ``loyalty``
(:class:`~protocols.loyalty.SaleLoyalty`); points and store credit redeemed are tenders of their
own kinds whose amounts must match those movements. Both keys are optional and left out of the
body when absent, so a sale without a customer is written, hashed and read as before.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from typing_extensions import TypedDict

from protocols.limits import (
    INT64_MAX,
    CurrencyCode,
    Identifier,
    Int64,
    Label,
    Seq,
    Text,
)
from protocols.loyalty import (
    BALANCE_TENDERS,
    POINTS_TENDER,
    STORE_CREDIT_TENDER,
    SaleLoyalty,
    customer_id_or_error,
)

#: Longest quantity text: plenty for "123456.789", bounded so a body cannot carry a huge number.
QUANTITY_LENGTH = 32
#: ``str(Decimal)`` of a finite quantity: digits, an optional fraction, an optional exponent.
QUANTITY_PATTERN = r"^-?[0-9]+(\.[0-9]+)?(E[+-][0-9]+)?$"


class InvalidSaleBody(ValueError):  # noqa: N818 - named in the domain's words
    """A ``sale.completed`` body that is not a sale; ``reason`` names the first wrong field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: A quantity as the register wrote it, ``str(Decimal)``: ``"2"``, ``"0.756"``; never a number.
QuantityText = Annotated[str, Field(max_length=QUANTITY_LENGTH, pattern=QUANTITY_PATTERN)]
#: A tender pays something: a positive amount.
PositiveMinor = Annotated[int, Field(strict=True, gt=0, le=INT64_MAX)]
#: Change handed back: never negative.
ChangeMinor = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]


# Lines and tenders are TypedDicts, not models: validating them stays in pydantic-core without
# building an object per line, which keeps the cloud's ingest within its budget (a model per line
# cost about five times as much per sale).


class SaleBodyLine(TypedDict):
    """One line: ``amount_minor`` is what the customer paid for it, discounts and tax included."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    sku: Annotated[Label, Field(min_length=1)]
    description: Text
    quantity: QuantityText
    unit_price_minor: Int64
    amount_minor: Int64


class SaleBodyTender(TypedDict):
    """A payment; ``reference`` is the terminal's, never a card number."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    kind: Identifier
    amount_minor: PositiveMinor
    reference: Label | None


def quantity(line: SaleBodyLine) -> Decimal:
    """A line's quantity as the Decimal the register sold (the pattern admits finite ones only)."""
    return Decimal(line["quantity"])


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
    customer_id: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    loyalty: SaleLoyalty | None = None

    @model_validator(mode="after")
    def _adds_up(self) -> Self:
        """The figures are the sale's own sums; a body that disagrees with itself is refused."""
        lines = sum(line["amount_minor"] for line in self.lines)
        if self.total_minor != lines:
            raise ValueError(f"total_minor {self.total_minor} is not the sum of the lines {lines}")
        tendered = sum(tender["amount_minor"] for tender in self.tenders)
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
        if self.customer_id is not None or self.loyalty is not None:
            self._balance_tenders_match()
        elif any(tender["kind"] in BALANCE_TENDERS for tender in self.tenders):
            raise ValueError("a sale paid with points or store credit must name its customer_id")
        return self

    def _balance_tenders_match(self) -> None:
        """Points and credit tenders are exactly the movements the ``loyalty`` key declares."""
        if self.customer_id is None:
            raise ValueError("loyalty movements need the sale's customer_id")
        customer_id_or_error(self.customer_id)
        paid = {kind: 0 for kind in BALANCE_TENDERS}
        for tender in self.tenders:
            if tender["kind"] in paid:
                paid[tender["kind"]] += tender["amount_minor"]
        loyalty = self.loyalty
        points = 0 if loyalty is None else loyalty.points_tender_minor
        credit = 0 if loyalty is None else loyalty.store_credit_redeemed_minor
        if paid[POINTS_TENDER] != points:
            raise ValueError(
                f"{POINTS_TENDER} tenders {paid[POINTS_TENDER]} are not the points burned"
                f" × point value ({points})"
            )
        if paid[STORE_CREDIT_TENDER] != credit:
            raise ValueError(
                f"{STORE_CREDIT_TENDER} tenders {paid[STORE_CREDIT_TENDER]} are not the store"
                f" credit redeemed ({credit})"
            )

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
        absent = {
            key for key in ("checkout", "customer_id", "loyalty") if getattr(self, key) is None
        }
        return self.model_dump(exclude=absent or None)
