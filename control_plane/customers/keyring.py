"""Envelope encryption of customer data: master key → tenant key → customer key → profile.

How it works: the master key (``STOREFLEET_CP_CUSTOMERS_MASTER_KEY``, never in the database) is
stretched with HKDF-SHA256 into an AES-256-GCM key that seals one random 32-byte key per tenant
(``customer_tenant_keys``, created on the tenant's first customer). From a tenant key HKDF
derives two keys with different labels: one seals each customer's own random key (so erasing one
customer shreds one key), the other is the HMAC key of the tenant's blind indexes
(:mod:`control_plane.customers.blind_index`). Every seal binds its row with associated data
(the tenant id, the customer id), so a sealed value copied into another row does not open.

Sealed form: nonce (12 bytes) ‖ ciphertext ‖ tag, as bytes. The master key's id (an HMAC of a
fixed label, 16 hex characters) is stored beside each tenant key, so a control plane started
with another master key says so by name instead of failing on a tag.

Why not :class:`control_plane.notifications.secret_box.SecretBox`: it seals text under one key
for webhook secrets (its HKDF label and its refusals are theirs); here there are three levels of
keys and binary values, so the same AES-GCM and HKDF primitives are used directly.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.customers.errors import CustomerKeysUnavailable
from control_plane.customers.settings import MASTER_KEY_VARIABLE
from control_plane.customers.tables import customer_tenant_keys

_NONCE_BYTES = 12
_KEY_BYTES = 32


def _derive(secret: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=label).derive(secret)


def seal(aead: AESGCM, plain: bytes, *, bound_to: str) -> bytes:
    """``plain`` sealed; it opens only with the same key and the same ``bound_to``."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plain, bound_to.encode())


def open_sealed(aead: AESGCM, sealed: bytes, *, bound_to: str) -> bytes:
    """What :func:`seal` sealed; :class:`InvalidTag` for another key or another row."""
    return aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], bound_to.encode())


@dataclass(frozen=True, slots=True)
class TenantKeys:
    """One tenant's derived keys: one seals customer keys, one keys the blind indexes."""

    tenant_id: str
    sealing: AESGCM
    index_key: bytes

    def new_customer_key(self, customer_id: str) -> tuple[AESGCM, bytes]:
        """A fresh key for one customer, and its sealed form for ``customers.wrapped_key``."""
        key = AESGCM.generate_key(bit_length=256)
        return AESGCM(key), seal(self.sealing, key, bound_to=self._bound(customer_id))

    def customer_key(self, customer_id: str, wrapped: bytes) -> AESGCM:
        """A customer's key from its sealed form."""
        try:
            key = open_sealed(self.sealing, wrapped, bound_to=self._bound(customer_id))
        except InvalidTag as err:
            msg = f"customer {customer_id}'s key does not open under tenant {self.tenant_id}'s key"
            raise CustomerKeysUnavailable(detail=msg) from err
        return AESGCM(key)

    def term(self, text: str) -> bytes:
        """The blind index of one normalised search term: HMAC-SHA256, first 16 bytes."""
        return hmac.new(self.index_key, text.encode(), hashlib.sha256).digest()[:16]

    def _bound(self, customer_id: str) -> str:
        return f"customer:{self.tenant_id}:{customer_id}"


class Keyring:
    """The master key and the tenant keys it opened (cached: a tenant key never changes)."""

    def __init__(self, master_key: str) -> None:
        secret = master_key.encode()
        self._master = AESGCM(_derive(secret, b"storefleet customers master v1"))
        self.master_key_id = hmac.new(secret, b"storefleet key id", hashlib.sha256).hexdigest()[:16]
        self._tenants: dict[str, TenantKeys] = {}

    async def tenant(
        self, conn: AsyncConnection, tenant_id: str, *, create: bool = False
    ) -> TenantKeys | None:
        """The tenant's keys; None when it has none yet and ``create`` is False."""
        cached = self._tenants.get(tenant_id)
        if cached is not None:
            return cached
        row = (
            await conn.execute(
                select(customer_tenant_keys).where(customer_tenant_keys.c.tenant_id == tenant_id)
            )
        ).first()
        if row is None:
            if not create:
                return None
            secret = os.urandom(_KEY_BYTES)
            await conn.execute(
                insert(customer_tenant_keys).values(
                    tenant_id=tenant_id,
                    master_key_id=self.master_key_id,
                    wrapped_key=seal(self._master, secret, bound_to=f"tenant:{tenant_id}"),
                    created_at=time.time_ns() // 1_000_000,
                )
            )
        else:
            secret = self._open_tenant(tenant_id, row.master_key_id, row.wrapped_key)
        keys = TenantKeys(
            tenant_id=tenant_id,
            sealing=AESGCM(_derive(secret, b"storefleet customer keys v1")),
            index_key=_derive(secret, b"storefleet customer search v1"),
        )
        self._tenants[tenant_id] = keys
        return keys

    async def tenant_for_writing(self, engine: AsyncEngine, tenant_id: str) -> TenantKeys:
        """The tenant's keys, created in their own transaction the first time (two instances
        creating at once: the second's insert fails and it reads the first's)."""
        for _ in range(2):
            try:
                async with engine.begin() as conn:
                    keys = await self.tenant(conn, tenant_id, create=True)
            except IntegrityError:
                continue
            if keys is not None:
                return keys
        msg = f"tenant {tenant_id}'s customer key could not be created"
        raise CustomerKeysUnavailable(detail=msg)

    def _open_tenant(self, tenant_id: str, key_id: str, wrapped: bytes) -> bytes:
        try:
            return open_sealed(self._master, wrapped, bound_to=f"tenant:{tenant_id}")
        except InvalidTag as err:
            msg = (
                f"tenant {tenant_id}'s customer key was sealed with master key {key_id}, not with"
                f" this {MASTER_KEY_VARIABLE} ({self.master_key_id}); start with the key it was"
                " sealed with"
            )
            raise CustomerKeysUnavailable(detail=msg) from err
