"""REST endpoints of provisioning: enrolments for operators, `/api/enrol` for appliances.

Operator routes name their policy action (``policy.EnrolmentsWrite`` …) and hand the principal's
tenant scope to the services: another tenant's enrolment or device is not found, and the operator
recorded as creator (revoker, decommissioner) is the authenticated one. `POST /api/enrol` is
public by design (the token is the credential), like the CA and CRL, and limited per client like
any unauthenticated request (429 with Retry-After); a refusal answers with the
library's stable `reason` and the `advice` the appliance shows the field tech, in the app's one
problem-details body (``control_plane.problems``). Routes raise; they never catch.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from http import HTTPStatus
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import engine_of, get_engine
from control_plane.devices.device_auth import (
    OWN_DEVICE_REFUSALS,
    RenewingDeviceDep,
    VerifierDep,
)
from control_plane.inputs import DeviceIdPath, IdentifierFilter, RefPath
from control_plane.operators.gatekeeper import get_gatekeeper
from control_plane.operators.policy import (
    CaWrite,
    DevicesRead,
    DevicesWrite,
    EnrolmentsRead,
    EnrolmentsWrite,
)
from control_plane.problems import problem_responses
from control_plane.provisioning import lifecycle, redemption, service
from control_plane.provisioning.authority import FleetAuthority
from control_plane.provisioning.errors import (
    REFUSAL_STATUS,
    CaUnavailable,
    DeviceDecommissioned,
    DeviceNotFound,
    EnrolmentNotFound,
    EnrolmentNotPending,
    RenewalRefused,
    StoreNotFound,
)
from control_plane.provisioning.schemas import (
    CertificateOut,
    DecommissionIn,
    DecommissionOut,
    EnrolIn,
    EnrolmentCreatedOut,
    EnrolmentIn,
    EnrolmentOut,
    EnrolOut,
    RenewIn,
    RenewOut,
    ReplaceIn,
    RevokeIn,
)
from control_plane.provisioning.sealing import SealBroken
from control_plane.provisioning.settings import ProvisioningSettings
from control_plane.tenancy import TenantScope
from provisioning.qr import render_png, render_sheet

router = APIRouter(prefix="/api", tags=["provisioning"])
PEM = "application/x-pem-file"

#: What an enrolment or a renewal CSR may be refused with (``errors.REFUSAL_STATUS``): a
#: malformed token, bad CSR or weak key is a 400.
_REFUSALS = (HTTPStatus.BAD_REQUEST, *sorted(set(REFUSAL_STATUS.values())))


def _body(media_type: str, what: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": what, "content": {media_type: {}}}}


async def get_authority(request: Request) -> FleetAuthority:
    """The app's CA holder, made on first use (settings from `app.state` or the environment)."""
    state = request.app.state
    authority: FleetAuthority | None = getattr(state, "provisioning", None)
    if authority is None:
        try:
            settings = getattr(state, "provisioning_settings", None) or ProvisioningSettings()
        except ValidationError as err:
            raise CaUnavailable("; ".join(str(e["msg"]) for e in err.errors())) from err
        authority = FleetAuthority(settings=settings, engine=engine_of(request))
        state.provisioning = authority
    return authority


Engine = Annotated[AsyncEngine, Depends(get_engine)]
Authority = Annotated[FleetAuthority, Depends(get_authority)]


def _created(created: service.CreatedEnrolment) -> EnrolmentCreatedOut:
    base = f"/api/enrolments/{created.view.id}"
    return EnrolmentCreatedOut(
        enrolment=EnrolmentOut.model_validate(created.view, from_attributes=True),
        qr_text=created.qr_text,
        fallback_code=created.fallback_code,
        qr_png_url=f"{base}/qr.png",
        sheet_pdf_url=f"{base}/sheet.pdf",
    )


def _ttl(hours: float | None) -> timedelta | None:
    return None if hours is None else timedelta(hours=hours)


@router.post(
    "/enrolments",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(StoreNotFound, CaUnavailable),
)
async def create_enrolment(
    body: EnrolmentIn, engine: Engine, authority: Authority, principal: EnrolmentsWrite
) -> EnrolmentCreatedOut:
    """Create a single-use enrolment; the answer holds its secrets, shown this once."""
    created = await service.create_enrolment(
        engine=engine,
        authority=authority,
        scope=TenantScope.of(principal),
        tenant_id=body.tenant_id,
        store_id=body.store_id,
        created_by=principal.email,
        register_name=body.register_name,
        ttl=_ttl(body.ttl_hours),
    )
    return _created(created)


@router.get("/enrolments", responses=problem_responses())
async def list_enrolments(
    engine: Engine,
    principal: EnrolmentsRead,
    store_id: IdentifierFilter = None,
    state: Literal["pending", "used", "revoked", "expired"] | None = None,
) -> list[EnrolmentOut]:
    """Enrolments, newest first."""
    views = await service.list_enrolments(
        engine=engine, scope=TenantScope.of(principal), store_id=store_id, state=state
    )
    return [EnrolmentOut.model_validate(view, from_attributes=True) for view in views]


@router.get("/enrolments/{enrolment_id}", responses=problem_responses(EnrolmentNotFound))
async def get_enrolment(
    enrolment_id: RefPath, engine: Engine, principal: EnrolmentsRead
) -> EnrolmentOut:
    """One enrolment."""
    view = await service.get_enrolment(
        engine=engine, scope=TenantScope.of(principal), enrolment_id=enrolment_id
    )
    return EnrolmentOut.model_validate(view, from_attributes=True)


@router.post(
    "/enrolments/{enrolment_id}/revoke",
    responses=problem_responses(EnrolmentNotFound, EnrolmentNotPending),
)
async def revoke_enrolment(
    enrolment_id: RefPath, body: RevokeIn, engine: Engine, principal: EnrolmentsWrite
) -> EnrolmentOut:
    """Cancel a pending enrolment (a lost or leaked sheet)."""
    del body  # who revokes is the authenticated operator, whatever the body says
    view = await service.revoke_enrolment(
        engine=engine,
        scope=TenantScope.of(principal),
        enrolment_id=enrolment_id,
        revoked_by=principal.email,
    )
    return EnrolmentOut.model_validate(view, from_attributes=True)


_SHEET_REFUSALS = problem_responses(
    EnrolmentNotFound, EnrolmentNotPending, SealBroken, CaUnavailable
)


@router.get(
    "/enrolments/{enrolment_id}/qr.png",
    response_class=Response,
    responses=_body("image/png", "the QR code") | _SHEET_REFUSALS,
)
async def enrolment_qr_png(
    enrolment_id: RefPath, engine: Engine, authority: Authority, principal: EnrolmentsWrite
) -> Response:
    """The QR code of a pending enrolment, as PNG (it holds the secret: enrolments:write)."""
    sheet = await service.enrolment_sheet(
        engine=engine,
        authority=authority,
        scope=TenantScope.of(principal),
        enrolment_id=enrolment_id,
    )
    png = await asyncio.to_thread(render_png, sheet.payload)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get(
    "/enrolments/{enrolment_id}/sheet.pdf",
    response_class=Response,
    responses=_body("application/pdf", "the printable sheet") | _SHEET_REFUSALS,
)
async def enrolment_sheet_pdf(
    enrolment_id: RefPath, engine: Engine, authority: Authority, principal: EnrolmentsWrite
) -> Response:
    """The printable sheet of a pending enrolment: QR, typed code, expiry, instructions."""
    sheet = await service.enrolment_sheet(
        engine=engine,
        authority=authority,
        scope=TenantScope.of(principal),
        enrolment_id=enrolment_id,
    )
    pdf = await asyncio.to_thread(render_sheet, sheet, kind="pdf")
    return Response(pdf, media_type="application/pdf", headers={"Cache-Control": "no-store"})


async def _client_budget(request: Request) -> None:
    """Redemption is open (the token is the credential), so each request spends its client's
    API budget like an unauthenticated operator request: a flood of tokens is answered 429 with
    Retry-After (unknown typed codes have their own, tighter limit: ``attempts``)."""
    await get_gatekeeper(request).limit_client(request, action="enrol")


@router.post(
    "/enrol",
    responses=problem_responses(*_REFUSALS, CaUnavailable),
    dependencies=[Depends(_client_budget)],
)
async def enrol(body: EnrolIn, request: Request, engine: Engine, authority: Authority) -> EnrolOut:
    """An appliance redeems its enrolment with its CSR and gets its identity."""
    answer = await redemption.enrol(
        engine=engine,
        authority=authority,
        csr_pem=body.csr_pem.encode(),
        token=body.token,
        fallback_code=body.fallback_code,
        client=request.client.host if request.client else "unknown",
    )
    return EnrolOut(
        device_id=answer.device_id,
        certificate_chain_pem=answer.chain_pem.decode(),
        agent_certificate_chain_pem=answer.agent_chain_pem.decode(),
        broker_url=answer.broker_url,
        ca_fingerprint=answer.ca_fingerprint,
        config=answer.config,
    )


@router.post(
    "/devices/{device_id}/decommission",
    responses=problem_responses(DeviceNotFound, CaUnavailable),
)
async def decommission(
    device_id: DeviceIdPath,
    body: DecommissionIn,
    engine: Engine,
    authority: Authority,
    principal: DevicesWrite,
) -> DecommissionOut:
    """Revoke the device's certificates, rewrite the CRL, mark it decommissioned."""
    del body  # who decommissions is the authenticated operator, whatever the body says
    retired = await lifecycle.decommission(
        engine=engine,
        authority=authority,
        scope=TenantScope.of(principal),
        device_id=device_id,
        decommissioned_by=principal.email,
        now=service.utc_now(),
    )
    return DecommissionOut(
        device_id=retired.device_id,
        decommissioned_at=retired.decommissioned_at,
        revoked_serials=list(retired.revoked_serials),
        crl_written=retired.crl_file is not None,
    )


@router.post(
    "/devices/{device_id}/replace",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(DeviceNotFound, StoreNotFound, CaUnavailable),
)
async def replace(
    device_id: DeviceIdPath,
    body: ReplaceIn,
    engine: Engine,
    authority: Authority,
    principal: DevicesWrite,
) -> EnrolmentCreatedOut:
    """An enrolment for a new appliance to take this device's register at its store."""
    created = await service.replace(
        engine=engine,
        authority=authority,
        scope=TenantScope.of(principal),
        device_id=device_id,
        created_by=principal.email,
        ttl=_ttl(body.ttl_hours),
    )
    return _created(created)


@router.post(
    "/devices/{device_id}/renew",
    responses=problem_responses(
        HTTPStatus.BAD_REQUEST,
        DeviceNotFound,
        DeviceDecommissioned,
        RenewalRefused,
        CaUnavailable,
        *OWN_DEVICE_REFUSALS,
    ),
)
async def renew(
    device: RenewingDeviceDep,
    body: RenewIn,
    engine: Engine,
    authority: Authority,
    verifier: VerifierDep,
) -> RenewOut:
    """A new certificate for the device's current key, before the current one expires.

    A device route: the device's own assertion, signed with that key, for its own id. The
    certificate it replaces is refused on every other device route from now on.
    """
    renewed = await lifecycle.renew(
        engine=engine,
        authority=authority,
        device_id=device.device_id,
        csr_pem=body.csr_pem.encode(),
        now=service.utc_now(),
    )
    verifier.forget(device.device_id)
    return RenewOut(
        device_id=renewed.device_id,
        certificate_chain_pem=renewed.chain_pem.decode(),
        agent_certificate_chain_pem=renewed.agent_chain_pem.decode(),
        not_after=renewed.not_after,
    )


@router.get("/devices/{device_id}/certificates", responses=problem_responses(DeviceNotFound))
async def device_certificates(
    device_id: DeviceIdPath, engine: Engine, principal: DevicesRead
) -> list[CertificateOut]:
    """Every certificate issued to the device, newest first."""
    views = await lifecycle.device_certificates(
        engine=engine, scope=TenantScope.of(principal), device_id=device_id, now=service.utc_now()
    )
    return [CertificateOut.model_validate(view, from_attributes=True) for view in views]


_CA_REFUSALS = problem_responses(CaUnavailable, invalid=False)


@router.get(
    "/ca.pem",
    response_class=Response,
    responses=_body(PEM, "the fleet's root certificate") | _CA_REFUSALS,
)
async def ca_pem(authority: Authority) -> Response:
    """The fleet's root certificate; appliances check its sha256 against the QR's pin."""
    return Response(await authority.root_pem(), media_type=PEM)


@router.get(
    "/crl.pem",
    response_class=Response,
    responses=_body(PEM, "the certificate revocation list") | _CA_REFUSALS,
)
async def crl_pem(authority: Authority) -> Response:
    """A freshly signed CRL of every revocation."""
    pem = await authority.crl_pem(now=service.utc_now())
    return Response(pem, media_type=PEM, headers={"Cache-Control": "no-store"})


@router.post("/crl/refresh", responses=_CA_REFUSALS)
async def refresh_crl(authority: Authority, principal: CaWrite) -> dict[str, bool]:
    """Rewrite the broker's CRL file now; run daily (OpenSSL refuses all once it is stale)."""
    del principal  # the fleet's CA is the platform's: the policy allows platform admins
    written = await authority.write_crl(now=service.utc_now())
    return {"crl_written": written is not None}
