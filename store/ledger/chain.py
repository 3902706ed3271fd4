"""The hash chain as ``verify`` walks it: each transaction's hash against its contents and
the previous hash (SHA-256, or the HMAC under its ledger key), and the chain against a head
exported earlier (``nudgeflow ledger head``).

What each check proves is in docs/finance.md ("What the chain proves"): an unkeyed chain
proves the rows agree with each other; a keyed one, checked with its key, that nobody without
the key wrote them; an exported head, that the chain still passes through it, so nothing up to
it was rewritten and nothing was removed from the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from domain import postings
from domain.ledger_keys import LedgerKeys
from domain.postings import GENESIS_HASH, Entry
from store.ledger.journal import chain_header


@dataclass(frozen=True)
class LedgerHead:
    """A head of the chain recorded outside the database (``nudgeflow ledger head``): the
    chain must still pass through it, with this hash, at this ``seq``."""

    seq: int
    hash: str


@dataclass
class ChainWalk:
    """What the walk has learned about the chain so far."""

    keys: LedgerKeys
    head: str = GENESIS_HASH
    keyed_from: int | None = None
    key_ids: list[str] = field(default_factory=list)
    unchecked: int = 0

    def hash_problem(self, txn: Mapping[str, object], posted: Sequence[Entry]) -> str | None:
        """Why the stored hash is not the one its contents and the previous hash give."""
        ident = txn["key_id"]
        if ident is None:
            if self.keyed_from is not None:
                return (
                    "it is hashed without the ledger key although the chain is keyed from "
                    f"seq {self.keyed_from} on (rewritten by someone without the key)"
                )
            expected = postings.chain_hash(self.head, chain_header(txn), posted)
            if expected != txn["hash"]:
                return "its hash does not match its contents (edited after it was written)"
            return None
        key = self.keys.find(str(ident))
        if key is None:
            if self.keys.given:
                return (
                    f"it is keyed with ledger key {ident}, which was not given: give it as a "
                    "retired key, or the transaction was forged"
                )
            self.unchecked += 1  # no key at all: only the links and the money are checked
            return None
        expected = postings.chain_hash(self.head, chain_header(txn), posted, key.secret)
        if expected != txn["hash"]:
            return (
                f"its hash does not match its contents under ledger key {ident} (edited "
                "after it was written)"
            )
        return None

    def advance(self, txn: Mapping[str, object]) -> None:
        ident, seq = txn["key_id"], int(str(txn["seq"]))
        if ident is not None:
            if self.keyed_from is None:
                self.keyed_from = seq
            if str(ident) not in self.key_ids:
                self.key_ids.append(str(ident))
        self.head = str(txn["hash"])


def head_problem(head: LedgerHead, found_hash: str | None, last_seq: int) -> str | None:
    """Why the chain no longer passes through the exported ``head``: ``found_hash`` is the
    hash of the transaction now at its seq (None: there is none)."""
    if found_hash is None:
        return (
            f"the exported head, seq {head.seq} (hash {head.hash[:12]}…), is not in the "
            f"ledger, which ends at seq {last_seq}: transactions were removed from its end"
        )
    if found_hash != head.hash:
        return (
            f"its hash {found_hash[:12]}… is not the exported head's {head.hash[:12]}…: the "
            "ledger was rewritten at or before this transaction"
        )
    return None
