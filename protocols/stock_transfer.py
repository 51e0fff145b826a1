"""Bodies of a transfer of stock between two stores: what the registers write and the cloud reads.

How it works: a transfer has two halves, each journaled by the store that does it, offline or not.

* ``stock.transfer_sent`` — the sending store packs the goods: its on-hand goes down by each
  line's ``quantity`` the moment it is journaled; the goods are now *in transit*, in neither
  store's figure. The body names the ``transfer_id`` (the sender makes it; it goes on the
  docket), the receiving store (``to_store``) and GTIN-14 → units.
* ``stock.transfer_received`` — the receiving store books what actually arrived against the same
  ``transfer_id``: its on-hand goes up by what it counted. The cloud compares the two halves line
  by line; what was sent and not received (or received and not sent) is the transfer's
  *difference*, recorded, never silently added to either store.

Either half may reach the cloud first (the sender may stay offline longer than the goods take
to travel), so neither half needs the other to be read. Quantities are whole units (stock is
counted in pieces; weighed goods are not transferred by count) and positive: a line of 0 is
left out. Pure: no I/O; both sides import this module.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from protocols.limits import Identifier, Label

#: Most lines one transfer carries: a full truck of distinct items, bounded for the journal.
MAX_LINES = 2000
#: Most units of one line: more than a store holds, small enough for every integer column.
MAX_UNITS = 1_000_000
Units = Annotated[int, Field(strict=True, gt=0, le=MAX_UNITS)]
Gtin14 = Annotated[str, Field(min_length=14, max_length=14, pattern=r"^[0-9]{14}$")]


class InvalidTransferBody(ValueError):  # noqa: N818 - named in the domain's words
    """A transfer body that is not one; ``reason`` names the first wrong field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def as_gtin14(code: str) -> str | None:
    """An EAN-8, UPC-A, EAN-13 or GTIN-14 with a right check digit as its GTIN-14, else None.

    The cloud's reading of a line's code (it cannot import the register's barcode parser; a
    UPC-E is not expanded here: registers journal sales by item id, which the catalog maps).
    """
    if len(code) not in (8, 12, 13, 14) or not (code.isascii() and code.isdigit()):
        return None
    padded = code.zfill(14)
    return padded if is_gtin14(padded) else None


def is_gtin14(code: str) -> bool:
    """A 14-digit GTIN whose GS1 check digit is right.

    Summed over the ASCII bytes (weights 1, 3, 1 … from the check digit leftwards: the total of
    a right number is a multiple of 10): a catalog import checks 100,000 of these.
    """
    if len(code) != 14 or not (code.isascii() and code.isdigit()):
        return False
    backwards = code.encode()[::-1]
    ones, threes = backwards[0::2], backwards[1::2]
    return (sum(ones) - 48 * len(ones) + 3 * (sum(threes) - 48 * len(threes))) % 10 == 0


class TransferLine(BaseModel):
    """GTIN-14 and whole units."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    gtin: Gtin14
    quantity: Units

    @field_validator("gtin")
    @classmethod
    def _checked(cls, gtin: str) -> str:
        if not is_gtin14(gtin):
            raise ValueError(f"{gtin} has a wrong check digit")
        return gtin


class _TransferBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    transfer_id: Identifier
    lines: Annotated[list[TransferLine], Field(min_length=1, max_length=MAX_LINES)]
    by: Label = ""

    @field_validator("lines")
    @classmethod
    def _one_line_per_gtin(cls, lines: list[TransferLine]) -> list[TransferLine]:
        seen: set[str] = set()
        for line in lines:
            if line.gtin in seen:
                raise ValueError(f"GTIN {line.gtin} is on two lines; add them up")
            seen.add(line.gtin)
        return lines

    def units(self) -> dict[str, int]:
        """GTIN-14 → units."""
        return {line.gtin: line.quantity for line in self.lines}

    def to_body(self) -> dict[str, Any]:
        """The journal body (JSON types only: the body is hashed canonically)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_body(cls, body: object) -> Any:
        """Validate a journal body; raises :class:`InvalidTransferBody` naming the first fault."""
        try:
            return cls.model_validate(body)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise InvalidTransferBody(f"transfer body invalid at {where}: {first['msg']}") from err


class TransferSent(_TransferBody):
    """``stock.transfer_sent``: goods leave the sending store for ``to_store``."""

    to_store: Identifier


class TransferReceived(_TransferBody):
    """``stock.transfer_received``: what arrived of ``transfer_id`` (from ``from_store``)."""

    from_store: Identifier | None = None


def transfer_sent(body: object) -> TransferSent:
    """A validated ``stock.transfer_sent`` body."""
    sent: TransferSent = TransferSent.from_body(body)
    return sent


def transfer_received(body: object) -> TransferReceived:
    """A validated ``stock.transfer_received`` body."""
    received: TransferReceived = TransferReceived.from_body(body)
    return received
