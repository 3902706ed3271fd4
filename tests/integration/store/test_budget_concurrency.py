"""Budgets cannot be overspent by overlapping runs: two processes reserve at once, 50
candidate actions against a budget for exactly 10 rewards, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from domain.campaign import Budget
from nudgeflow.money import Money
from store import ledger
from store.ledger import tables

ROOT = Path(__file__).resolve().parents[3]

# Each worker waits for the start file, then tries every candidate (in its own order, one
# ledger transaction each) and prints the ids it was granted.
WORKER = """
import json, random, sys, time
from datetime import date
from pathlib import Path
from nudgeflow.money import Money
from store import ledger
from store.engine import create_store_engine

url, seed, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
engine = create_store_engine(url)
candidates = [f"action-{i:02d}" for i in range(50)]
random.Random(seed).shuffle(candidates)
while not go.exists():
    time.sleep(0.005)
granted = []
for action_id in candidates:
    with ledger.ledger_transaction(engine) as connection:
        if ledger.reserve(connection, action_id, "c", Money(900, "USD"), None, date(2026, 11, 3)):
            granted.append(action_id)
engine.dispose()
print(json.dumps(granted))
"""


@dataclass(frozen=True)
class _Campaign:
    id: str
    budget: Budget


def test_two_processes_cannot_reserve_more_than_the_budget(
    engine: sa.Engine, db_url: str, tmp_path: Path
) -> None:
    with ledger.ledger_transaction(engine) as connection:
        files = [_Campaign("c", Budget(Money(9000, "USD"), None))]  # 10 rewards of 9.00
        ledger.sync_funding(connection, files, date(2026, 11, 3), ZoneInfo("UTC"))  # type: ignore[arg-type]
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-W", "error", str(script), db_url, str(seed), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for seed in (1, 2)
    ]
    time.sleep(1.0)  # both have imported and connected: start them together
    go.touch()
    granted: list[list[str]] = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        granted.append(json.loads(out))
    with engine.connect() as connection:
        reserved = connection.execute(
            sa.select(tables.ledger_transactions.c.action_id).where(
                tables.ledger_transactions.c.kind == "reserve"
            )
        ).scalars()
        reserved_ids = sorted(reserved)
        balances = ledger.campaign_balances(connection)["c"]
        result = ledger.verify(connection)
    assert len(reserved_ids) == 10  # at most 10; and with 50 candidates, exactly 10
    assert set(granted[0]) | set(granted[1]) == set(reserved_ids)
    assert (balances.budget, balances.reserved) == (0, 9000)
    assert result.ok, result.problems
