"""API keys: made from 32 random bytes, shown once, stored only as their SHA-256, checked in constant time.

A key looks like ``cap_`` + 43 URL-safe characters. Its first 12 characters (the prefix) are stored in the
clear to tell keys apart in listings and to find the candidate row; the full key is then checked by
comparing SHA-256 digests with :func:`hmac.compare_digest`. A revoked key stays in the table (so old
entries keep their owner) and never opens anything again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from captioner.errors import CaptionerError
from captioner.history.models import MAX_KEY_NAME, ApiKey, utc_now

KEY_START = "cap_"  # every key begins so, which makes keys easy to spot (and to scan for in leaked text)
KEY_BYTES = 32  # randomness of a key
PREFIX_LENGTH = 12  # characters kept in the clear
MAX_KEY_LENGTH = 200  # longer "keys" are refused before hashing


class KeyNotFound(CaptionerError):
    """No API key matches the id or prefix given."""


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never the key itself."""

    id: int
    name: str
    prefix: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "prefix": self.prefix, "admin": self.admin,
                "created_at": _aware(self.created_at).isoformat(),
                "revoked_at": _aware(self.revoked_at).isoformat() if self.revoked_at else None}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)  # SQLite hands back naive ones


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.name, row.prefix, bool(row.admin), row.created_at, row.revoked_at)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    """The ``api_keys`` table of the history database."""

    def __init__(self, session_factory: sessionmaker[Session]):
        self._sessions = session_factory

    def create(self, name: str, admin: bool = False) -> tuple[KeyInfo, str]:
        """A new key: its description and the key itself, which is not stored and cannot be shown again."""
        name = (name or "").strip()
        if not name or len(name) > MAX_KEY_NAME:
            raise ValueError(f"a key needs a name of 1 to {MAX_KEY_NAME} characters (who or what will use it)")
        key = KEY_START + secrets.token_urlsafe(KEY_BYTES)
        row = ApiKey(name=name, key_hash=key_digest(key), prefix=key[:PREFIX_LENGTH], admin=admin,
                     created_at=utc_now())
        with self._sessions.begin() as session:
            session.add(row)
            session.flush()
            info = _info(row)
        return info, key

    def list(self) -> list[KeyInfo]:
        with self._sessions() as session:
            return [_info(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.id))]

    def revoke(self, which: str) -> KeyInfo:
        """Revoke the key with this id (a number) or prefix; revoking twice is harmless."""
        which = (which or "").strip()
        with self._sessions.begin() as session:
            query = select(ApiKey).where(ApiKey.id == int(which) if which.isdigit() else ApiKey.prefix == which)
            rows = session.scalars(query).all()
            if len(rows) != 1:
                raise KeyNotFound(f"no API key {'matches' if not rows else 'alone matches'} {which!r}; "
                                  "see 'captioner keys list' for ids and prefixes")
            if rows[0].revoked_at is None:
                rows[0].revoked_at = utc_now()
            return _info(rows[0])

    def verify(self, key: str) -> KeyInfo | None:
        """The active key ``key`` opens, or None (unknown, malformed or revoked)."""
        if not isinstance(key, str) or not key.startswith(KEY_START) or len(key) > MAX_KEY_LENGTH:
            return None
        digest = key_digest(key)
        with self._sessions() as session:
            candidates = session.scalars(select(ApiKey).where(ApiKey.prefix == key[:PREFIX_LENGTH])).all()
        found = None
        for row in candidates:  # compare every candidate, so the time does not depend on which one matched
            if hmac.compare_digest(row.key_hash, digest):
                found = row
        return _info(found) if found is not None and found.revoked_at is None else None

    def active(self, key_id: int) -> KeyInfo | None:
        """The key with this id if it is still active (a signed-in page session names its key by id)."""
        with self._sessions() as session:
            row = session.get(ApiKey, key_id)
        return _info(row) if row is not None and row.revoked_at is None else None
