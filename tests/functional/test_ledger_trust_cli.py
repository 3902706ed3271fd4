"""``nudgeflow ledger verify`` and ``ledger head`` as finance runs them: a transaction
rewritten with database access, its hash and every later one recomputed, is named when the
ledger key or an exported head is given; what the chain proves is said in words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.ledger_keys import LedgerKeys
from store import ledger
from store.engine import create_store_engine
from store.migrate import upgrade
from tests.functional.runner import Nudgeflow
from tests.integration.store.test_ledger import campaign, reserve, sync
from tests.integration.store.test_ledger_keyed import keep_key_ids, rewrite, transaction_id

KEY = "finance-keeps-this-key-elsewhere-0001"
KEY_ID = LedgerKeys.from_secrets(KEY).current.id  # type: ignore[union-attr]


@pytest.fixture
def keyed_ledger(nudgeflow: Nudgeflow) -> sa.Engine:
    """The functional settings' database with a keyed ledger of five transactions, written
    as the nightly run with NUDGEFLOW_LEDGER__KEY would write it."""
    made = create_store_engine(nudgeflow.env["NUDGEFLOW_DATABASE_URL"])
    upgrade(made)
    ledger.use_keys(made, LedgerKeys.from_secrets(KEY))
    sync(made, [campaign("c", "100.00")])
    for action in ("a1", "a2", "a3", "a4"):
        reserve(made, action)
    return made


def test_a_rewritten_transaction_is_named_with_the_key_or_an_exported_head(
    nudgeflow: Nudgeflow, keyed_ledger: sa.Engine, tmp_path: Path
) -> None:
    keyed = nudgeflow.configure(NUDGEFLOW_LEDGER__KEY=KEY)
    fine = keyed("ledger", "verify")
    assert fine.returncode == 0, fine.stderr
    assert f"hash chain: keyed from seq 1 with ledger key {KEY_ID}, checked" in fine.stdout

    exported = keyed("ledger", "head", "--out", str(tmp_path / "head.json"))
    assert exported.returncode == 0, exported.stderr
    head = json.loads((tmp_path / "head.json").read_text())
    assert (head["seq"], head["transactions"]) == (5, 5) and len(head["hash"]) == 64

    rewrite(keyed_ledger, 3, "reserve 1.00 USD for action a2", keep_key_ids)
    tampered, last = transaction_id(keyed_ledger, 3), transaction_id(keyed_ledger, 5)
    keyed_ledger.dispose()

    broken = keyed("ledger", "verify")
    assert broken.returncode == 1
    assert broken.stderr.splitlines() == [
        f"ledger BROKEN: transaction {tampered} (seq 3): its hash does not match its contents "
        f"under ledger key {KEY_ID} (edited after it was written)"
    ]

    # Without the key the keyed hashes cannot be checked, and verify says so...
    blind = nudgeflow("ledger", "verify")
    assert blind.returncode == 0, blind.stderr
    assert "keyed from seq 1, NOT checked: no ledger key given" in blind.stdout
    # ...but the head finance exported still catches the rewrite.
    with_head = nudgeflow("ledger", "verify", "--head", str(tmp_path / "head.json"))
    assert with_head.returncode == 1
    [line] = with_head.stderr.splitlines()
    assert line.startswith(f"ledger BROKEN: transaction {last} (seq 5): its hash ")
    assert line.endswith("the ledger was rewritten at or before this transaction")

    refused = keyed("ledger", "head")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines()[-1] == "no head exported: the ledger does not verify"


def test_an_unkeyed_ledger_says_what_it_cannot_prove_and_a_bad_head_file_is_one_line(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    made = create_store_engine(nudgeflow.env["NUDGEFLOW_DATABASE_URL"])
    upgrade(made)
    sync(made, [campaign("c", "100.00")])
    made.dispose()
    result = nudgeflow("ledger", "verify")
    assert result.returncode == 0, result.stderr
    assert "hash chain: not keyed: whoever can write the database can rebuild it" in result.stdout

    (tmp_path / "head.json").write_text('{"seq": "one"}')
    bad = nudgeflow("ledger", "verify", "--head", str(tmp_path / "head.json"))
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        f"error: --head: {tmp_path / 'head.json'} has no seq (a whole number) and hash (64 hex "
        "digits) as `ledger head` writes them"
    ]
    missing = nudgeflow("ledger", "verify", "--head", str(tmp_path / "nowhere.json"))
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1
    assert "cannot read" in missing.stderr
