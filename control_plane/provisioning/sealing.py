"""Sealing a pending enrolment's QR text and code, so the sheet can be printed again later.

The token and fallback code are secrets: the store keeps their hashes to redeem them. An operator
still wants to reprint a sheet that jammed in the printer, so the QR text and code are kept
sealed (AES-256-GCM, key derived from the CA passphrase with HKDF, the enrolment id as
associated data so a sealed value cannot be moved to another row) until the enrolment is used or
revoked. A copy of the database alone reveals no usable token.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from http import HTTPStatus

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from control_plane.provisioning.errors import ProvisioningServiceError

_INFO = b"storefleet enrolment seal v1"
_NONCE_BYTES = 12


class SealBroken(ProvisioningServiceError):  # noqa: N818 - named for what was refused
    """A sealed value does not open with this key (other passphrase, other row, corrupt)."""

    status = HTTPStatus.GONE
    reason = "sheet_unavailable"
    advice = "revoke this enrolment and create a new one to print a sheet"


@dataclass(frozen=True, slots=True)
class SealedSecrets:
    """What is sealed: the QR text (carries the token) and the typed fallback code."""

    qr_text: str
    fallback_code: str


class Sealer:
    """Seals and opens enrolment secrets with a key derived from the CA passphrase."""

    def __init__(self, passphrase: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(passphrase)
        self._aead = AESGCM(key)

    def seal(self, secrets: SealedSecrets, *, enrolment_id: str) -> str:
        """Encrypt and authenticate `secrets` for the row `enrolment_id`."""
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps({"qr": secrets.qr_text, "code": secrets.fallback_code}).encode()
        sealed = nonce + self._aead.encrypt(nonce, plain, enrolment_id.encode())
        return base64.urlsafe_b64encode(sealed).decode()

    def open(self, sealed: str, *, enrolment_id: str) -> SealedSecrets:
        """Decrypt a value made by `seal` for the same row; raise SealBroken otherwise."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            plain = self._aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], enrolment_id.encode()
            )
            fields = json.loads(plain)
            return SealedSecrets(qr_text=str(fields["qr"]), fallback_code=str(fields["code"]))
        except (InvalidTag, ValueError, KeyError) as err:
            msg = f"the sealed QR of enrolment {enrolment_id} does not open with this CA passphrase"
            raise SealBroken(msg) from err
