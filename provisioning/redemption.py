"""The control plane's enrolment step, minus HTTP and SQL: CSR + stored record -> a claim.

How it works (what the enrolment endpoint does, in this order)
1. Find the record: `hash_token(token)` or `hash_fallback_code(code)` -> look-up (None if absent).
2. `claim = claim_enrolment(record, csr_pem=…, new_device_id=…, now=…)`: validates the CSR
   (BadCsr, WeakKey), applies the lifecycle rules (TokenUnknown/Used/Expired/Revoked) and returns
   the record to persist, with the device id to certify. It raises every refusal as an
   `EnrolmentRefused`, which the router maps to an HTTP answer.
3. Persist `claim.record`. A first use (`claim.retry` False) is a compare-and-set on
   `used_at IS NULL`; if it changed no row, another instance won the race: re-read and go to 2.
4. Only then `ca.issue_device_certificate(claim.csr_pem, device_id=claim.device_id)` and answer
   with `issued.chain_pem`. Issuing after the claim is durable means no certificate ever exists
   for a claim that was lost. (`ca.issue_validated_device_certificate(claim.csr, …)` signs the
   request this step already checked, without checking its signature a second time.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from cryptography import x509

from provisioning.ca import validate_csr, validate_device_id
from provisioning.enrolment import EnrolmentRecord, check_enrolment
from provisioning.errors import EnrolmentRefused, TokenUnknown
from provisioning.keys import public_key_fingerprint


@dataclass(frozen=True, slots=True)
class Claim:
    """A redemption that may proceed: persist `record`, then certify `csr_pem` as `device_id`."""

    record: EnrolmentRecord
    csr_pem: bytes
    csr: x509.CertificateSigningRequest  # `csr_pem` parsed, its signature and key checked
    device_id: str
    retry: bool  # same key asked again after a lost answer: record is unchanged


def claim_enrolment(
    record: EnrolmentRecord | None,
    *,
    csr_pem: bytes,
    new_device_id: str,
    now: datetime,
) -> Claim:
    """Decide a redemption; raise the EnrolmentRefused subclass that says why not.

    `new_device_id` is used on a first redemption only; a retry gets the id assigned the first
    time, so an appliance that lost the answer comes back as the same device.
    """
    if record is None:  # cheapest and most useful answer first
        raise TokenUnknown("no enrolment matches this code")
    csr = validate_csr(csr_pem)
    decision = check_enrolment(record, key_sha256=public_key_fingerprint(csr.public_key()), now=now)
    if isinstance(decision, EnrolmentRefused):
        raise decision
    if decision.retry and decision.record.device_id is not None:
        return Claim(
            record=decision.record,
            csr_pem=csr_pem,
            csr=csr,
            device_id=decision.record.device_id,
            retry=True,
        )
    device_id = validate_device_id(new_device_id)
    return Claim(
        record=replace(decision.record, device_id=device_id),
        csr_pem=csr_pem,
        csr=csr,
        device_id=device_id,
        retry=decision.retry,
    )
