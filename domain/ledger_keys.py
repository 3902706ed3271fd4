"""The keys of the ledger's hash chain (pure).

An unkeyed chain (SHA-256 over the previous hash and the transaction) proves only that the
rows agree with each other: whoever can write the database can edit a transaction and
recompute its hash and every later one. A keyed chain uses HMAC-SHA256 under a key kept
outside the database (``NUDGEFLOW_LEDGER__KEY``) instead: without the key, nobody can write a
hash that ``verify`` accepts.

Each keyed transaction records the *id* of its key, never the key: the first 16 hex
characters of an HMAC of a fixed text under the key. A key can therefore be rotated: new
transactions are keyed with the current key, and ``verify`` checks older ones with the
retired keys it is given.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

KEY_ID_CONTEXT = b"nudgeflow ledger key id, v1"  # what a key id is the HMAC of


def key_id(secret: bytes) -> str:
    """The public name of a key: it tells keys apart and reveals nothing about them."""
    return hmac.new(secret, KEY_ID_CONTEXT, hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class LedgerKey:
    secret: bytes = field(repr=False)

    @property
    def id(self) -> str:
        return key_id(self.secret)


@dataclass(frozen=True)
class LedgerKeys:
    """The key new transactions are written with (``current``; None: unkeyed) and the keys
    of earlier ones that ``verify`` may meet (``retired``)."""

    current: LedgerKey | None = None
    retired: tuple[LedgerKey, ...] = ()

    @classmethod
    def from_secrets(cls, current: str | None, retired: Iterable[str] = ()) -> LedgerKeys:
        return cls(
            LedgerKey(current.encode()) if current else None,
            tuple(LedgerKey(secret.encode()) for secret in retired if secret),
        )

    @property
    def given(self) -> bool:
        """Whether any key was given: then a transaction keyed with another is a forgery."""
        return self.current is not None or bool(self.retired)

    def find(self, ident: str) -> LedgerKey | None:
        for key in (self.current, *self.retired):
            if key is not None and key.id == ident:
                return key
        return None


NO_KEYS = LedgerKeys()
