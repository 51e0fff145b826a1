"""Where the CA remembers what it issued and revoked.

The CA needs three facts to be safe: which serials it issued (to refuse revoking a stranger and
to never reuse a serial), which it revoked (to build the CRL) and a CRL number that only grows.
`CertificateLedger` is the seam: the file ledger below serves the CLI, tests and a single-machine
control plane; the control plane's SQL store implements the same four methods for a fleet with
several instances (serial as primary key makes issuing race-free there).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography import x509

from provisioning.errors import CertificateAuthorityError
from provisioning.keys import PRIVATE_FILE_MODE, write_atomic


@dataclass(frozen=True, slots=True)
class IssuedRecord:
    """One certificate the CA signed: enough to list, audit and revoke it."""

    serial: int
    common_name: str
    kind: str  # "device", "agent" (a device's agent: CN `<id>.agent`), "control-plane", "broker"
    not_before: datetime
    not_after: datetime
    public_key_sha256: str


@dataclass(frozen=True, slots=True)
class RevokedRecord:
    """One revocation, as it goes into the CRL."""

    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags


class CertificateLedger(Protocol):
    """Storage for the CA's issued/revoked records; implementations must be durable."""

    def record_issued(self, record: IssuedRecord) -> None:
        """Persist a newly issued certificate; must refuse (raise) a duplicate serial."""

    def get_issued(self, serial: int) -> IssuedRecord | None:
        """The issued record for `serial`, or None."""

    def record_revoked(self, record: RevokedRecord) -> None:
        """Persist a revocation; recording the same serial twice keeps the first."""

    def revoked(self) -> list[RevokedRecord]:
        """Every revocation, for the CRL."""

    def next_crl_number(self) -> int:
        """A CRL number larger than any returned before (RFC 5280 §5.2.3)."""


class FileCertificateLedger:
    """A JSON file ledger for one writer (CLI, tests, single-machine control plane)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, dict[str, dict[str, str | int]] | int]:
        if not self.path.exists():
            return {"issued": {}, "revoked": {}, "crl_number": 0}
        loaded: dict[str, dict[str, dict[str, str | int]] | int] = json.loads(self.path.read_text())
        return loaded

    def _save(self, data: dict[str, dict[str, dict[str, str | int]] | int]) -> None:
        text = json.dumps(data, indent=1, sort_keys=True, default=str)
        write_atomic(self.path, text.encode(), mode=PRIVATE_FILE_MODE)

    def _section(
        self, data: dict[str, dict[str, dict[str, str | int]] | int], name: str
    ) -> dict[str, dict[str, str | int]]:
        section = data.get(name)
        if not isinstance(section, dict):
            raise self._damaged(f"its {name!r} is not an object")
        return section

    def _damaged(self, what: str) -> CertificateAuthorityError:
        return CertificateAuthorityError(
            f"the CA ledger {self.path} is damaged: {what}; restore it from a backup of the CA "
            "directory (it lists every serial issued and revoked)",
            directory=str(self.path.parent),
        )

    def record_issued(self, record: IssuedRecord) -> None:
        """Store `record`; a serial seen before is a bug upstream, so refuse loudly."""
        data = self._load()
        issued = self._section(data, "issued")
        key = format(record.serial, "x")
        if key in issued:
            msg = f"serial {key} already issued"
            raise ValueError(msg)
        issued[key] = {
            k: str(v) if isinstance(v, datetime) else v for k, v in asdict(record).items()
        }
        self._save(data)

    def get_issued(self, serial: int) -> IssuedRecord | None:
        """Look up one issued certificate by serial."""
        raw = self._section(self._load(), "issued").get(format(serial, "x"))
        if raw is None:
            return None
        return IssuedRecord(
            serial=int(raw["serial"]),
            common_name=str(raw["common_name"]),
            kind=str(raw["kind"]),
            not_before=datetime.fromisoformat(str(raw["not_before"])),
            not_after=datetime.fromisoformat(str(raw["not_after"])),
            public_key_sha256=str(raw["public_key_sha256"]),
        )

    def record_revoked(self, record: RevokedRecord) -> None:
        """Store a revocation unless the serial is already revoked (first one wins)."""
        data = self._load()
        revoked = self._section(data, "revoked")
        revoked.setdefault(
            format(record.serial, "x"),
            {
                "serial": record.serial,
                "revoked_at": record.revoked_at.isoformat(),
                "reason": record.reason.value,
            },
        )
        self._save(data)

    def revoked(self) -> list[RevokedRecord]:
        """All revocations in serial order."""
        revoked = self._section(self._load(), "revoked")
        return [
            RevokedRecord(
                serial=int(raw["serial"]),
                revoked_at=datetime.fromisoformat(str(raw["revoked_at"])),
                reason=x509.ReasonFlags(str(raw["reason"])),
            )
            for _, raw in sorted(revoked.items())
        ]

    def next_crl_number(self) -> int:
        """Increment and return the stored CRL number."""
        data = self._load()
        current = data.get("crl_number")
        if not isinstance(current, int) or isinstance(current, bool):
            raise self._damaged("its 'crl_number' is not a whole number")
        data["crl_number"] = current + 1
        self._save(data)
        return current + 1
