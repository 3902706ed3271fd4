"""The keyed hash chain and the exported head on SQLite and PostgreSQL: someone with write
access to the database rewrites a transaction and recomputes its hash and every later one —
as well as it can without the key — and ``verify`` names the transaction when it is given the
ledger key or an exported head. Also key rotation, the keyless writer's refusal, and what an
unkeyed chain cannot prove."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from domain import postings
from domain.ledger_keys import NO_KEYS, LedgerKey, LedgerKeys
from nudgeflow.errors import StoreError
from store import ledger
from store.ledger import journal, tables
from tests.integration.store.test_ledger import _drop_triggers, campaign, reserve, sync

CURRENT = LedgerKey(b"finance-keeps-this-key-elsewhere-0001")
KEY = LedgerKeys(CURRENT)
ROTATED = LedgerKey(b"a-second-key-after-the-rotation-0002")
_T = tables.ledger_transactions.c
_E = tables.ledger_entries.c


def write_ledger(engine: sa.Engine, reservations: int = 4) -> None:
    """A funding transaction (seq 1), then one reservation per action (seq 2…)."""
    sync(engine, [campaign("c", "100.00")])
    for n in range(1, reservations + 1):
        reserve(engine, f"a{n}")


def check(
    engine: sa.Engine, keys: LedgerKeys | None = None, head: ledger.LedgerHead | None = None
) -> ledger.VerifyResult:
    with engine.connect() as connection:
        return ledger.verify(connection, keys, head)


def transaction_id(engine: sa.Engine, seq: int) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(_T.id).where(_T.seq == seq)).scalar_one())


def head_of(engine: sa.Engine) -> ledger.LedgerHead:
    result = check(engine)
    return ledger.LedgerHead(result.head_seq, result.head_hash)


Rehash = Callable[[str, dict[str, object], list[postings.Entry]], tuple[str, str | None]]


def rewrite(engine: sa.Engine, seq: int, memo: str, rehash: Rehash) -> None:
    """What a forger with database access does: drop the triggers, edit transaction ``seq``,
    then recompute ``prev_hash``, ``hash`` and ``key_id`` of it and every later one with
    ``rehash(prev_hash, header, entries) -> (hash, key_id)``."""
    with engine.begin() as connection:
        _drop_triggers(connection)
        connection.execute(
            sa.update(tables.ledger_transactions).where(_T.seq == seq), {"memo": memo}
        )
        prev = connection.execute(sa.select(_T.hash).where(_T.seq == seq - 1)).scalar()
        prev = prev or postings.GENESIS_HASH
        rows = connection.execute(
            sa.select(tables.ledger_transactions).where(_T.seq >= seq).order_by(_T.seq)
        ).mappings()
        for row in list(rows):
            entries = [
                postings.Entry(account, int(amount), currency)
                for account, amount, currency in connection.execute(
                    sa.select(_E.account, _E.amount_minor, _E.currency).where(
                        _E.transaction_id == row["id"]
                    )
                )
            ]
            digest, key_id = rehash(prev, journal.chain_header(row), entries)
            connection.execute(
                sa.update(tables.ledger_transactions).where(_T.id == row["id"]),
                {"prev_hash": prev, "hash": digest, "key_id": key_id},
            )
            prev = digest


def keep_key_ids(
    prev: str, header: dict[str, object], entries: list[postings.Entry]
) -> tuple[str, str]:
    """SHA-256, the transaction still claiming the key: all a forger without it can do."""
    return postings.chain_hash(prev, header, entries), CURRENT.id


def unkeyed(
    prev: str, header: dict[str, object], entries: list[postings.Entry]
) -> tuple[str, None]:
    return postings.chain_hash(prev, header, entries), None


def own_key(prev: str, header: dict[str, object], entries: list[postings.Entry]) -> tuple[str, str]:
    forged = LedgerKey(b"the-forger-s-own-key-0003")
    return postings.chain_hash(prev, header, entries, forged.secret), forged.id


# --- the keyed chain --------------------------------------------------------------------


def test_a_keyed_ledger_verifies_with_its_key_and_says_so(engine: sa.Engine) -> None:
    ledger.use_keys(engine, KEY)
    write_ledger(engine)
    result = check(engine)  # the engine's keys
    assert result.ok, result.problems
    assert (result.keyed_from, result.key_ids, result.unchecked) == (1, (CURRENT.id,), 0)
    with engine.connect() as connection:
        stored = connection.execute(sa.select(_T.key_id).distinct()).scalars().all()
    assert stored == [CURRENT.id]  # the key's id, never the key
    # Without any key, the keyed hashes cannot be checked: only the links and the money.
    blind = check(engine, NO_KEYS)
    assert blind.ok and blind.unchecked == 5


@pytest.mark.parametrize(
    ("forgery", "reason"),
    [
        ("keep_key_ids", "does not match its contents under ledger key"),
        ("unkeyed", "hashed without the ledger key although the chain is keyed from seq 1"),
        ("own_key", "which was not given"),
    ],
)
def test_a_rewritten_transaction_with_every_later_hash_recomputed_is_named(
    engine: sa.Engine, forgery: str, reason: str
) -> None:
    ledger.use_keys(engine, KEY)
    write_ledger(engine)
    rehash = {"keep_key_ids": keep_key_ids, "unkeyed": unkeyed, "own_key": own_key}
    rewrite(engine, 3, "reserve 1.00 USD for action a2", rehash[forgery])

    result = check(engine, KEY)
    assert not result.ok
    assert result.first is not None
    assert (result.first.seq, result.first.transaction_id) == (3, transaction_id(engine, 3))
    assert reason in result.first.reason
    assert str(result.first).startswith(f"transaction {transaction_id(engine, 3)} (seq 3): ")


def test_the_first_keyed_hash_holds_the_unkeyed_transactions_before_it(
    engine: sa.Engine,
) -> None:
    write_ledger(engine, reservations=2)  # seq 1–3, written before the ledger had a key
    ledger.use_keys(engine, KEY)
    for action in ("a3", "a4"):
        reserve(engine, action)  # seq 4–5, keyed
    result = check(engine)
    assert result.ok and result.keyed_from == 4

    # Rewriting seq 2 and recomputing the unkeyed hashes after it breaks the first keyed one.
    with engine.connect() as connection:
        keyed = {
            int(seq): key_id for seq, key_id in connection.execute(sa.select(_T.seq, _T.key_id))
        }

    def as_before(
        prev: str, header: dict[str, object], entries: list[postings.Entry]
    ) -> tuple[str, str | None]:
        return postings.chain_hash(prev, header, entries), keyed[int(str(header["seq"]))]

    rewrite(engine, 2, "reserve 1.00 USD for action a1", as_before)
    first = check(engine).first
    assert first is not None
    assert first.seq == 4 and "under ledger key" in first.reason


def test_a_rotated_key_verifies_with_the_retired_one_and_not_without_it(
    engine: sa.Engine,
) -> None:
    ledger.use_keys(engine, KEY)
    write_ledger(engine, reservations=1)  # seq 1–2 under the first key
    ledger.use_keys(engine, LedgerKeys(ROTATED, (CURRENT,)))
    reserve(engine, "a2")  # seq 3 under the new one
    result = check(engine)
    assert result.ok and result.key_ids == (CURRENT.id, ROTATED.id)
    missing = check(engine, LedgerKeys(ROTATED)).first
    assert missing is not None
    assert missing.seq == 1 and f"ledger key {CURRENT.id}, which was not given" in str(missing)


def test_a_process_without_the_key_refuses_to_extend_a_keyed_chain(engine: sa.Engine) -> None:
    ledger.use_keys(engine, KEY)
    write_ledger(engine, reservations=1)
    ledger.use_keys(engine, NO_KEYS)
    with pytest.raises(StoreError, match=r"keyed .* NUDGEFLOW_LEDGER__KEY"):
        reserve(engine, "a2")
    assert check(engine, KEY).head_seq == 2


# --- the exported head ------------------------------------------------------------------


def test_an_unkeyed_chain_rebuilt_after_a_rewrite_is_caught_only_by_an_exported_head(
    engine: sa.Engine,
) -> None:
    write_ledger(engine)
    exported = head_of(engine)
    rewrite(engine, 3, "reserve 1.00 USD for action a2", unkeyed)

    assert check(engine).ok  # what an unkeyed chain cannot prove on its own
    result = check(engine, head=exported)
    assert not result.ok
    [problem] = result.problems
    assert (problem.seq, problem.transaction_id) == (5, transaction_id(engine, 5))
    assert "is not the exported head's" in problem.reason
    assert "rewritten at or before this transaction" in problem.reason


def test_removing_the_newest_transactions_is_caught_by_an_exported_head(
    engine: sa.Engine,
) -> None:
    write_ledger(engine)
    exported = head_of(engine)
    newest = [transaction_id(engine, 4), transaction_id(engine, 5)]
    with engine.begin() as connection:
        _drop_triggers(connection)
        connection.execute(sa.delete(tables.ledger_entries).where(_E.transaction_id.in_(newest)))
        connection.execute(sa.delete(tables.ledger_transactions).where(_T.id.in_(newest)))
        # The running balances are a cache: a careful forger fixes them too.
        connection.execute(sa.update(tables.ledger_accounts).values(balance_minor=0))
        sums = connection.execute(
            sa.select(_E.account, sa.func.sum(_E.amount_minor)).group_by(_E.account)
        ).all()
        for account, total in sums:
            connection.execute(
                sa.update(tables.ledger_accounts)
                .where(tables.ledger_accounts.c.account == account)
                .values(balance_minor=int(total))
            )
    assert check(engine).ok  # the chain that is left is consistent
    [problem] = check(engine, head=exported).problems
    assert str(problem) == (
        f"the exported head, seq 5 (hash {exported.hash[:12]}…), is not in the ledger, which "
        "ends at seq 3: transactions were removed from its end"
    )


def test_transactions_after_an_exported_head_leave_it_in_the_chain(engine: sa.Engine) -> None:
    write_ledger(engine, reservations=2)
    exported = head_of(engine)
    reserve(engine, "a3")
    result = check(engine, head=exported)
    assert result.ok and result.head_seq == exported.seq + 1
