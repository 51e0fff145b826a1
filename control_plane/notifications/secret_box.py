"""Webhook signing secrets sealed at rest: the database holds only what the settings' key opens.

Why: signing needs the secret itself (a hash could not sign), so whoever read a clear copy of
``notification_channels`` could forge a tenant's webhooks. The secret is sealed with AES-256-GCM
under a key derived (HKDF-SHA256) from ``STOREFLEET_CP_NOTIFY_SECRETS_KEY``, with the channel's id
as associated data so a sealed value moved to another channel's row does not open. A copy of the
database without the key signs nothing.

Stored form: ``sealed:v1:`` + urlsafe base64 of nonce (12 bytes) ‖ ciphertext ‖ tag. A value
without that prefix is a clear secret from before sealing: :func:`seal_clear_secrets` seals those
in place when the notifier starts with a key. (The SMTP password is never in the database: it is
read from the environment only.)
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.notifications.tables import notification_channels

SEALED = "sealed:v1:"
KEY_VARIABLE = "STOREFLEET_CP_NOTIFY_SECRETS_KEY"
_INFO = b"storefleet webhook secret v1"
_NONCE_BYTES = 12


class SecretUnavailable(Exception):  # noqa: N818 - named for what happened
    """A stored secret that cannot be opened: no key configured, another key, or another row."""


class SecretBox:
    """Seals and opens webhook secrets with the key from the settings."""

    def __init__(self, key: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
        self._aead = AESGCM(derived.derive(key.encode()))

    def seal(self, secret: str, *, channel_id: str) -> str:
        """The stored form of ``secret`` for the channel ``channel_id``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, secret.encode(), channel_id.encode())
        return SEALED + base64.urlsafe_b64encode(sealed).decode()

    def open(self, stored: str, *, channel_id: str) -> str:
        """The secret a :meth:`seal` of this channel stored; a clear (older) value as it is."""
        if not stored.startswith(SEALED):
            return stored
        try:
            raw = base64.urlsafe_b64decode(stored.removeprefix(SEALED).encode())
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], channel_id.encode())
        except (InvalidTag, ValueError) as err:
            msg = (
                f"the signing secret of channel {channel_id} does not open with this"
                f" {KEY_VARIABLE} (set the key it was sealed with, or recreate the channel)"
            )
            raise SecretUnavailable(msg) from err
        return plain.decode()


def box_of(key: str | None) -> SecretBox | None:
    """The box for a configured key, or None when there is none."""
    return SecretBox(key) if key else None


def open_stored(box: SecretBox | None, stored: str, *, channel_id: str) -> str:
    """A stored secret opened; :class:`SecretUnavailable` when it is sealed and there is no key."""
    if box is None:
        if stored.startswith(SEALED):
            raise SecretUnavailable(
                f"channel {channel_id}'s signing secret is sealed and {KEY_VARIABLE} is not set"
            )
        return stored
    return box.open(stored, channel_id=channel_id)


async def seal_clear_secrets(engine: AsyncEngine, box: SecretBox) -> int:
    """Seal every webhook secret still stored in clear; how many were sealed."""
    c = notification_channels.c
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                select(c.id, c.secret).where(c.secret.is_not(None), c.secret.not_like(f"{SEALED}%"))
            )
        ).all()
        for row in rows:
            await conn.execute(
                update(notification_channels)
                .where(c.id == row.id, c.secret == row.secret)
                .values(secret=box.seal(str(row.secret), channel_id=str(row.id)))
            )
    return len(rows)
