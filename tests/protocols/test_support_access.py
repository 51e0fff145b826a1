"""The store configuration's ``support`` section: SSH for remote support, keys only, off unless
turned on. Keys are made here with ``cryptography`` as ``ssh-keygen`` would write their ``.pub``
line; each refusal names what to do."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from protocols.store_config import (
    APPLY,
    MAX_SUPPORT_KEYS,
    ApplyMode,
    StoreConfigRefused,
    parse_store_config,
)
from tests.harness.store_config import store_config_doc

OPENSSH = serialization.PublicFormat.OpenSSH
RAW = serialization.Encoding.OpenSSH


def ed25519_pub(comment: str = "support@storefleet") -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return f"{key.public_bytes(RAW, OPENSSH).decode()} {comment}".strip()


def rsa_pub(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    return key.public_bytes(RAW, OPENSSH).decode()


def with_support(**support: Any) -> dict[str, Any]:
    doc = copy.deepcopy(store_config_doc())
    doc["support"] = support
    return doc


def refusal(**support: Any) -> StoreConfigRefused:
    with pytest.raises(StoreConfigRefused) as refused:
        parse_store_config(with_support(**support))
    assert refused.value.key == "support"
    return refused.value


def test_support_ssh_is_off_with_no_keys_by_default() -> None:
    config = parse_store_config(store_config_doc())
    assert config.support.ssh is False
    assert config.support.ssh_keys == []
    assert APPLY["support"] is ApplyMode.LIVE  # the agent's: the register never restarts for it


def test_ssh_turned_on_with_keys_of_each_kind_support_uses() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(RAW, OPENSSH)
    keys = [ed25519_pub("alice@support desk 2"), rsa_pub(3072), p256.decode()]
    config = parse_store_config(with_support(ssh=True, ssh_keys=keys))
    assert config.support.ssh is True
    assert config.support.ssh_keys == keys  # the comment, spaces and all, is kept


def test_ssh_on_with_no_key_is_refused() -> None:
    err = refusal(ssh=True, ssh_keys=[])
    assert "nobody could log in" in err.reason


def test_keys_may_wait_while_ssh_is_off() -> None:
    config = parse_store_config(with_support(ssh=False, ssh_keys=[ed25519_pub()]))
    assert config.support.ssh is False


@pytest.mark.parametrize(
    ("line", "says"),
    [
        pytest.param(
            "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAABG5vbmU=",
            "this is a private key",
            id="private-key",
        ),
        pytest.param(
            'from="10.0.0.0/8" ' + "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOv",
            "not an accepted key type",
            id="key-options",
        ),
        pytest.param("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "not an accepted key type", id="dsa"),
        pytest.param("ssh-ed25519 not*base64*at*all", "cannot be read", id="broken-base64"),
        pytest.param("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "cannot be read", id="cut-short"),
    ],
)
def test_a_line_sshd_would_not_take_is_refused(line: str, says: str) -> None:
    err = refusal(ssh=True, ssh_keys=[line])
    assert says in err.reason, err.reason
    assert err.path == "support.ssh_keys[0]"


def test_a_key_whose_encoded_type_differs_is_refused() -> None:
    blob = ed25519_pub().split()[1]
    err = refusal(ssh=True, ssh_keys=[f"ecdsa-sha2-nistp256 {blob}"])
    assert "cannot be read" in err.reason


def test_a_short_rsa_key_is_refused() -> None:
    err = refusal(ssh=True, ssh_keys=[rsa_pub(2048)])
    assert "2048 bits is too short" in err.reason


def test_ssh_must_be_a_true_boolean_and_keys_are_bounded() -> None:
    assert "boolean" in refusal(ssh="yes", ssh_keys=[ed25519_pub()]).reason.lower()
    keys = [ed25519_pub() for _ in range(MAX_SUPPORT_KEYS + 1)]
    assert refusal(ssh=True, ssh_keys=keys).path == "support.ssh_keys"


def test_a_two_line_paste_is_refused() -> None:
    two = ed25519_pub() + "\n" + ed25519_pub()
    assert refusal(ssh=True, ssh_keys=[two]).path == "support.ssh_keys[0]"


def test_the_encoded_blob_is_what_sshd_reads() -> None:
    """The check reads the blob's own type string, as sshd does (not just the line's word)."""
    line = ed25519_pub()
    blob = base64.b64decode(line.split()[1])
    assert blob[4:15] == b"ssh-ed25519"
    assert parse_store_config(with_support(ssh=True, ssh_keys=[line])).support.ssh_keys == [line]
