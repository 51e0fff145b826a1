"""The CA's JSON file ledger refuses a damaged file with the CA's error, saying how to recover."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provisioning.ca_ledger import FileCertificateLedger, IssuedRecord
from provisioning.errors import CertificateAuthorityError

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
RECORD = IssuedRecord(
    serial=0x1F,
    common_name="acme-01-0001",
    kind="device",
    not_before=NOW,
    not_after=NOW + timedelta(days=90),
    public_key_sha256="ab" * 32,
)


def test_a_sound_file_keeps_serials_and_a_growing_crl_number(tmp_path: Path) -> None:
    ledger = FileCertificateLedger(tmp_path / "ledger.json")
    ledger.record_issued(RECORD)
    numbers = [ledger.next_crl_number(), ledger.next_crl_number()]
    found = ledger.get_issued(RECORD.serial)
    assert found is not None
    assert found.common_name == RECORD.common_name
    assert numbers == [1, 2]


@pytest.mark.parametrize(
    ("content", "what"),
    [
        pytest.param(
            {"issued": [], "revoked": {}, "crl_number": 0},
            "its 'issued' is not an object",
            id="issued-a-list",
        ),
        pytest.param(
            {"revoked": {}, "crl_number": 0}, "its 'issued' is not an object", id="issued-missing"
        ),
    ],
)
def test_a_damaged_section_is_the_cas_error(
    tmp_path: Path, content: dict[str, object], what: str
) -> None:
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps(content))
    with pytest.raises(CertificateAuthorityError, match="restore it from a backup") as refused:
        FileCertificateLedger(path).record_issued(RECORD)
    assert what in str(refused.value)
    assert refused.value.directory == str(tmp_path)


@pytest.mark.parametrize(
    "crl_number",
    [
        pytest.param("7", id="a-string"),
        pytest.param(1.5, id="a-float"),
        pytest.param(True, id="a-bool"),
        pytest.param(None, id="null"),
    ],
)
def test_a_crl_number_that_is_no_whole_number_is_the_cas_error(
    tmp_path: Path, crl_number: object
) -> None:
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps({"issued": {}, "revoked": {}, "crl_number": crl_number}))
    with pytest.raises(CertificateAuthorityError, match="'crl_number' is not a whole number"):
        FileCertificateLedger(path).next_crl_number()
    assert json.loads(path.read_text())["crl_number"] == crl_number  # left as found
