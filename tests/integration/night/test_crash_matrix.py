"""The crash matrix (issue 6): a child process works a night of 300+ actions against the
Stripe and SendGrid fakes and SIGKILLs itself at a named kill point; the night is run again.

Every kill point is hit on SQLite and on PostgreSQL. To keep the matrix fast, each database
works one night through a chain of children: the first is killed at the first point, the
run that takes over from it is killed at the next one (so recovery itself is crashed), and
so on through all eight; a last run completes the night. After each kill the night must
already be sound: no reward made twice, no email sent twice, the ledger verified and within
funding. At the end every reward exists exactly once, every email at most once (exactly
once when recorded as sent), every action is terminal, and only the actions a kill caught
between ``sending`` and ``sent`` are ``unknown``. Each kill point is its own test case,
reporting on its link of the chain.

The fakes are threads of this process, so they outlive the children.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from night.batch import KILL_POINTS
from store.engine import create_store_engine
from store.outbox import PENDING
from tests.conftest import POSTGRES_URL
from tests.fakes.sendgrid_api import FakeSendGrid
from tests.fakes.stripe_api import StripeFake
from tests.integration.night.crash_world import (
    AS_OF,
    ROOT,
    NightState,
    add_customers,
    app_from,
    close_app,
    email_action,
    exactly_once_problems,
    ledger_problems,
    prepare,
    read_night,
    settings_env,
    write_campaigns,
)

MAX_WORKERS = 4
BATCH_SIZE = 50
# The order of the chain and the hit each child dies at. The reward points come first,
# while rewarded actions are left (about 250 of the 320 to send); each per-action kill
# lands about 30 actions further into the night; the fatigue update runs once, at the end.
CHAIN = (
    ("after_reserve", 30),
    ("during_ledger_write", 30),
    ("after_provider_create", 30),
    ("after_reward_stored", 30),
    ("after_render", 30),
    ("after_send_accepted", 30),
    ("between_batches", 1),
    ("during_fatigue_update", 1),
)
assert sorted(point for point, _ in CHAIN) == sorted(KILL_POINTS)
# What the child needs from this process's environment (its settings come from `env`).
_KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def run_child(env: dict[str, str], *kill: str) -> subprocess.CompletedProcess[str]:
    child_env = {k: v for k, v in os.environ.items() if k in _KEPT} | env
    return subprocess.run(
        [sys.executable, "-m", "tests.integration.night.crash_child", AS_OF.isoformat(), *kill],
        env=child_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def summary_of(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert run.returncode == 0, run.stdout + run.stderr
    summary: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return summary


@dataclass
class Kill:
    """One link of the chain: the child killed at ``point`` and what it left behind."""

    point: str
    run: subprocess.CompletedProcess[str]
    before: NightState
    after: NightState
    emailed: set[str | None]  # actions SendGrid had accepted an email for, at the kill
    created: set[str]  # actions Stripe held an object for, at the kill
    problems: list[str]  # what was already broken right after the kill

    @property
    def sending(self) -> set[str]:
        return self.after.in_state("sending")


@dataclass
class Chain:
    kills: dict[str, Kill]
    last: subprocess.CompletedProcess[str]
    night: NightState
    problems: list[str]
    emailed: list[str | None]  # the action of every email SendGrid accepted
    seconds: float


def created_for(stripe: StripeFake) -> set[str]:
    return {p["metadata"]["action_id"] for p in stripe.promotion_codes.values()} | {
        t["metadata"]["action_id"] for t in stripe.balance_transactions.values()
    }


def run_chain(
    env: dict[str, str], engine: sa.Engine, stripe: StripeFake, sendgrid: FakeSendGrid
) -> Chain:
    started = time.perf_counter()
    kills: dict[str, Kill] = {}
    for point, nth in CHAIN:
        before = read_night(engine)
        run = run_child(env, point, str(nth))
        after = read_night(engine)
        kills[point] = Kill(
            point,
            run,
            before,
            after,
            {email_action(m) for m in sendgrid.messages},
            created_for(stripe),
            exactly_once_problems(after, stripe, sendgrid, complete=False) + ledger_problems(after),
        )
        if run.returncode != -signal.SIGKILL:
            break  # the chain is broken here: the cases say where
    last = run_child(env)
    night = read_night(engine)
    return Chain(
        kills,
        last,
        night,
        exactly_once_problems(night, stripe, sendgrid) + ledger_problems(night),
        [email_action(m) for m in sendgrid.messages],
        time.perf_counter() - started,
    )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    """One night per database, worked through the chain of killed children."""
    folder = tmp_path_factory.mktemp(f"crash-{request.param}")
    admin: sa.Engine | None = None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'night.db'}"
    else:
        if not POSTGRES_URL:
            pytest.skip("NUDGEFLOW_TEST_POSTGRES_URL is not set")
        admin = create_store_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in POSTGRES_URL else "?"
        url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    try:
        with StripeFake() as stripe, FakeSendGrid() as sendgrid:
            add_customers(stripe)
            env = settings_env(
                database_url=url,
                campaigns_dir=write_campaigns(folder / "campaigns"),
                stripe_url=stripe.url,
                sendgrid_url=sendgrid.url,
                batch_size=BATCH_SIZE,
                max_workers=MAX_WORKERS,
            )
            app = app_from(env)
            try:
                assert prepare(app)["new_actions"] >= 300
            finally:
                close_app(app)
            engine = create_store_engine(url)
            try:
                yield run_chain(env, engine, stripe, sendgrid)
            finally:
                engine.dispose()
    finally:
        if admin is not None:
            with admin.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            admin.dispose()


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_run_killed_at_a_kill_point_leaves_a_sound_night_that_the_next_run_continues(
    chain: Chain, point: str
) -> None:
    assert point in chain.kills, f"the chain broke before {point}"
    kill = chain.kills[point]
    assert kill.run.returncode == -signal.SIGKILL, kill.run.stdout + kill.run.stderr
    assert kill.problems == []
    # The child took over the lease of the one killed before it, turned what that one left
    # in `sending` into `unknown` and got on with the night.
    assert kill.before.in_state("sending") <= kill.after.in_state("unknown")
    assert len(kill.sending) <= MAX_WORKERS
    pending = kill.after.in_state(*PENDING)
    progress = len(kill.before.in_state(*PENDING)) - len(pending)
    if point == "during_fatigue_update":
        assert not pending and not kill.sending, "the fatigue update comes after dispatch"
    else:
        assert pending and progress > 0, "killed mid-night, after some work"
    if point == "after_provider_create":
        assert kill.created & kill.after.in_state("reserved"), "Stripe made it, we never heard"
    if point == "after_send_accepted":
        assert kill.sending & kill.emailed, "SendGrid accepted it, we never heard"


def test_the_night_completes_after_every_kill_with_each_effect_once(chain: Chain) -> None:
    summary = summary_of(chain.last)
    assert summary["took_over_from"], "the last killed run's lease is taken over at once"
    assert len(chain.night.actions) >= 300
    assert chain.problems == []
    caught = set().union(*(kill.sending for kill in chain.kills.values()))
    assert chain.night.in_state("unknown") == caught
    assert chain.kills["after_send_accepted"].sending & caught
    failed = chain.night.in_state("failed")
    assert {a: chain.night.actions[a]["reason"] for a in failed} == {}
    # Every email SendGrid took is a sent action's, or one of the unknown ones.
    assert len(chain.night.in_state("sent")) == len(chain.emailed) - len(
        caught & set(chain.emailed)
    )
    assert set(chain.night.states()) <= {"sent", "unknown", "held_out"}
