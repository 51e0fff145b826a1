"""Request and response bodies of the customers API (operators) and the register's search."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from protocols.limits import Identifier

#: How a customer gave (or withdrew) consent.
ConsentVia = Literal["in_store", "console", "web", "phone"]
#: A customer id as printed on the card (checked by protocols.customer_card when used).
CustomerId = Annotated[
    str, Field(pattern=r"^C[0-9A-HJKMNP-TV-Z]{13}$", examples=["C5T0K8J2M9QXR7"])
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=32, pattern=r"^\+?[0-9 ()./-]{6,31}$"),
]


class ConsentIn(BaseModel):
    """What the customer agreed to, and how they said so."""

    model_config = ConfigDict(extra="forbid")

    marketing: bool = False
    email_receipts: bool = False
    via: ConsentVia = "console"


class CustomerIn(BaseModel):
    """A new customer; ``tenant_id`` defaults to the operator's own."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: Identifier | None = None
    name: Name
    email: Email | None = None
    phone: Phone | None = None
    consent: ConsentIn = Field(default_factory=ConsentIn)


class ProfileChange(BaseModel):
    """New contact details (issue 14): only the fields sent change; ``null`` removes an e-mail
    or a phone number. A name can be corrected but not removed: it is what finds a customer."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> ProfileChange:
        if not self.model_fields_set:
            msg = "nothing to change: send name, email or phone"
            raise ValueError(msg)
        if "name" in self.model_fields_set and self.name is None:
            msg = "a customer keeps a name: correct it, or erase the customer"
            raise ValueError(msg)
        return self

    def changes(self) -> dict[str, str | None]:
        """The fields sent, with their new values (None: removed)."""
        return {field: getattr(self, field) for field in sorted(self.model_fields_set)}


class SearchIn(BaseModel):
    """A search: in the body, so no e-mail or phone number lands in a URL or an access log."""

    model_config = ConfigDict(extra="forbid")

    q: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)] = (
        Field(description="a name (or its beginning), a phone number, an e-mail or a card")
    )
    tenant_id: Identifier | None = Field(
        default=None, description="platform admins: the tenant searched (others: their own)"
    )


class ConsentOut(BaseModel):
    """Consent as recorded: flags, when (Unix ms) and how."""

    marketing: bool
    email_receipts: bool
    given_at: int | None
    via: str | None


class CustomerOut(BaseModel):
    """A customer as an operator sees it; name, e-mail and phone are None once erased."""

    id: str
    tenant_id: str
    card: str = Field(description="the payload of the card's QR code: SFC1:<id>")
    name: str | None
    email: str | None
    phone: str | None
    consent: ConsentOut
    created_at: int
    erased_at: int | None


class CustomerList(BaseModel):
    """Customers found by a search (or the newest ones)."""

    customers: list[CustomerOut]


class RegisterCustomer(BaseModel):
    """What a register may know of a customer: the pseudonymous id and a masked name."""

    id: str
    display_name: str = Field(examples=["Anna K."])


class RegisterSearch(BaseModel):
    """Customers of the register's tenant matching its search."""

    customers: list[RegisterCustomer]


class CustomerSale(BaseModel):
    """One sale attributed to a customer (the sales table's ``customer_id``)."""

    sale_id: str
    device_id: str
    store_id: str
    receipt_no: int
    currency: str
    total_minor: int
    ts: int


class CustomerExport(BaseModel):
    """Everything stored about one customer (GDPR art. 15 and 20), as JSON."""

    schema_: str = Field(alias="schema", default="sf.customer_export")
    v: int = 1
    exported_at: int
    customer: CustomerOut
    sales: list[CustomerSale]
    receipts_sent: int

    model_config = ConfigDict(populate_by_name=True)
