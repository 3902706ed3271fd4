"""The keys of the ledger's hash chain: a keyed hash is an HMAC nobody can recompute without
the key, the unkeyed hash is unchanged (old ledgers still verify), and a key's id names it
without revealing it."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime

from domain import postings
from domain.ledger_keys import NO_KEYS, LedgerKey, LedgerKeys, key_id

HEADER: dict[str, object] = {
    "seq": 7,
    "kind": "reserve",
    "campaign_id": "c",
    "action_id": "a1",
    "member_ref": "0123456789abcdef",
    "provider_ref": None,
    "business_date": date(2026, 11, 3),
    "created_at": datetime(2026, 11, 3, 2, 0, 0, 5),
    "memo": "reserve 10.00 USD for action a1",
}
ENTRIES = [
    postings.Entry("campaign:c:budget", -1000, "USD"),
    postings.Entry("campaign:c:reserved", 1000, "USD"),
]
PREV = "ab" * 32


def test_the_unkeyed_hash_is_the_sha256_it_always_was() -> None:
    text = PREV + postings.canonical_json(HEADER, ENTRIES)
    assert postings.chain_hash(PREV, HEADER, ENTRIES) == hashlib.sha256(text.encode()).hexdigest()


def test_the_keyed_hash_is_an_hmac_of_the_same_text_under_the_key() -> None:
    text = (PREV + postings.canonical_json(HEADER, ENTRIES)).encode()
    keyed = postings.chain_hash(PREV, HEADER, ENTRIES, b"secret-one-0123456")
    assert keyed == hmac.new(b"secret-one-0123456", text, hashlib.sha256).hexdigest()
    assert keyed != postings.chain_hash(PREV, HEADER, ENTRIES)
    assert keyed != postings.chain_hash(PREV, HEADER, ENTRIES, b"secret-two-0123456")


def test_a_key_id_names_the_key_and_reveals_neither_it_nor_a_hash_of_it() -> None:
    secret = b"secret-one-0123456"
    ident = key_id(secret)
    assert len(ident) == 16 and ident == LedgerKey(secret).id
    assert ident != key_id(b"secret-two-0123456")
    assert ident not in hashlib.sha256(secret).hexdigest()
    assert "secret" not in repr(LedgerKey(secret))


def test_keys_are_found_by_id_current_and_retired() -> None:
    keys = LedgerKeys.from_secrets("current-key-0123456", ["old-key-0123456789", ""])
    assert keys.given and keys.current is not None
    assert keys.find(keys.current.id) == keys.current
    assert keys.find(key_id(b"old-key-0123456789")) == LedgerKey(b"old-key-0123456789")
    assert keys.find(key_id(b"never-given-01234")) is None
    assert not NO_KEYS.given and NO_KEYS.find(key_id(b"x" * 16)) is None
