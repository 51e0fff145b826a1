"""API shapes of provisioning: what operators send and see, what an appliance sends and gets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from protocols.topics import DEVICE_ID_PATTERN

Identifier = Annotated[str, Field(pattern=DEVICE_ID_PATTERN.pattern)]
Operator = Annotated[str, Field(min_length=1, max_length=200)]
TtlHours = Annotated[float, Field(gt=0, le=24 * 30)]
CsrPem = Annotated[str, Field(min_length=1, max_length=16_384)]


class EnrolmentIn(BaseModel):
    """Create an enrolment for one register of a store."""

    tenant_id: Identifier
    store_id: Identifier
    created_by: Operator
    register_name: Annotated[str, Field(max_length=100)] = ""
    ttl_hours: TtlHours | None = None


class EnrolmentOut(BaseModel):
    """An enrolment without its secrets."""

    id: str
    tenant_id: str
    store_id: str
    register_name: str
    replaces_device_id: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    used_at: datetime | None
    device_id: str | None
    state: Literal["pending", "used", "revoked", "expired"]


class EnrolmentCreatedOut(BaseModel):
    """A new enrolment and, once only, its secrets: the QR text and the typed code."""

    enrolment: EnrolmentOut
    qr_text: str
    fallback_code: str
    qr_png_url: str
    sheet_pdf_url: str


class RevokeIn(BaseModel):
    """Who revokes an enrolment (audit log)."""

    revoked_by: Operator = "operator"


class EnrolIn(BaseModel):
    """An appliance redeeming an enrolment: the token from the QR or the typed code, and a CSR."""

    token: Annotated[str, Field(max_length=100)] | None = None
    fallback_code: Annotated[str, Field(max_length=40)] | None = None
    csr_pem: CsrPem

    @model_validator(mode="after")
    def _one_secret(self) -> EnrolIn:
        if (self.token is None) == (self.fallback_code is None):
            msg = "give exactly one of token (from the QR code) or fallback_code (typed)"
            raise ValueError(msg)
        return self


class EnrolOut(BaseModel):
    """The answer to an enrolment: identity, certificate chain, broker, first config."""

    device_id: str
    certificate_chain_pem: str
    broker_url: str
    ca_fingerprint: str
    config: dict[str, Any]


class RefusalOut(BaseModel):
    """Why an enrolment or renewal was refused: a stable reason and what to do next."""

    reason: str
    advice: str
    message: str


class DecommissionIn(BaseModel):
    """Who decommissions a device (audit log)."""

    decommissioned_by: Operator = "operator"


class DecommissionOut(BaseModel):
    """What decommissioning did."""

    device_id: str
    decommissioned_at: datetime
    revoked_serials: list[str]
    crl_written: bool


class ReplaceIn(BaseModel):
    """Who asks for a replacement, and how long its enrolment is valid."""

    created_by: Operator
    ttl_hours: TtlHours | None = None


class RenewIn(BaseModel):
    """A CSR for the key of the device's current certificate."""

    csr_pem: CsrPem


class RenewOut(BaseModel):
    """A renewed certificate chain."""

    device_id: str
    certificate_chain_pem: str
    not_after: datetime


class CertificateOut(BaseModel):
    """One certificate of a device."""

    serial: str
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    reason: str | None
    renewal_due: bool
