"""Sealed QR text opens only for its own row and passphrase; a wrong CA passphrase says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.db.engine import make_engine
from control_plane.provisioning.authority import FleetAuthority
from control_plane.provisioning.errors import CaUnavailable
from control_plane.provisioning.sealing import SealBroken, SealedSecrets, Sealer
from control_plane.provisioning.settings import ProvisioningSettings
from tests.control_plane.provisioning.fleet_harness import make_ca

SECRETS = SealedSecrets(qr_text="sfenrol:1?u=…", fallback_code="ABCD-EFGH-JKMN")


def test_a_sealed_sheet_opens_for_its_own_row() -> None:
    sealer = Sealer(b"a long CA passphrase")

    assert sealer.open(sealer.seal(SECRETS, enrolment_id="enr-1"), enrolment_id="enr-1") == SECRETS


@pytest.mark.parametrize(
    ("passphrase", "row"),
    [
        pytest.param(b"a long CA passphrase", "enr-2", id="moved-to-another-row"),
        pytest.param(b"another CA passphrase", "enr-1", id="other-passphrase"),
    ],
)
def test_a_sealed_sheet_does_not_open_elsewhere(passphrase: bytes, row: str) -> None:
    sealed = Sealer(b"a long CA passphrase").seal(SECRETS, enrolment_id="enr-1")

    with pytest.raises(SealBroken):
        Sealer(passphrase).open(sealed, enrolment_id=row)


async def test_a_wrong_ca_passphrase_is_reported_with_what_to_set(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cp.db'}")
    settings = ProvisioningSettings(
        directory=ca.directory,
        passphrase="not the passphrase it was made with",  # type: ignore[arg-type]
    )

    with pytest.raises(CaUnavailable, match="passphrase is wrong"):
        await FleetAuthority(settings=settings, engine=engine).ca()
    await engine.dispose()
