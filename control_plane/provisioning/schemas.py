"""API shapes of provisioning: what operators send and see, what an appliance sends and gets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from control_plane.inputs import Identifier, Name, RegisterName, Utf8
from protocols.limits import NO_NUL_PATTERN, PRINTABLE_PATTERN

#: Who did it, for the audit log (``String(200)``).
Operator = Name
TtlHours = Annotated[float, Field(gt=0, le=24 * 30)]
#: A PEM certificate request: ASCII lines, so no NUL and nothing UTF-8 cannot carry.
CsrPem = Annotated[
    str, StringConstraints(min_length=1, max_length=16_384, pattern=NO_NUL_PATTERN), Utf8
]
Token = Annotated[str, StringConstraints(max_length=100, pattern=PRINTABLE_PATTERN), Utf8]
TypedCode = Annotated[str, StringConstraints(max_length=40, pattern=PRINTABLE_PATTERN), Utf8]


class EnrolmentIn(BaseModel):
    """Create an enrolment for one register of a store."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: Identifier
    store_id: Identifier
    created_by: Operator
    register_name: RegisterName = ""
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

    token: Token | None = None
    fallback_code: TypedCode | None = None
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
    certificate_chain_pem: str  # the register's session: CN = device id
    agent_certificate_chain_pem: str  # the fleet agent's session: CN `<device id>.agent`
    broker_url: str
    ca_fingerprint: str
    config: dict[str, Any]


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
    agent_certificate_chain_pem: str  # renewed together with the register's
    not_after: datetime


class CertificateOut(BaseModel):
    """One certificate of a device."""

    serial: str
    kind: str  # "device" (the register's session) or "agent" (the fleet agent's)
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    reason: str | None
    renewal_due: bool
