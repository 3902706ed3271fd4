"""Crash tests of a night's dispatch shared by worker processes (PostgreSQL, issue 14): a
run and a worker that joined it work the night of ``crash_world`` (320+ actions) against
the Stripe and SendGrid fakes, and one of them is SIGKILLed mid-batch.

* The worker dies after SendGrid accepted an email, after Stripe created a reward it never
  stored, or after a reservation: the run takes its batch over once the claim expires,
  turns what it left in ``sending`` into ``unknown`` and finishes the night (the reward
  Stripe made is found by its idempotency key, not made again).
* The run dies mid-batch: the worker works what it can claim and leaves; the next run
  (recovery under the lease, then a new round) finishes the night.

Either way every reward exists once, no email went twice, every action is terminal, only
the actions the kill caught between ``sending`` and ``sent`` are ``unknown``, and the
ledger verifies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from store.engine import create_store_engine
from store.schema import dispatch_batches
from tests.conftest import POSTGRES_URL
from tests.fakes.sendgrid_api import FakeSendGrid
from tests.fakes.stripe_api import StripeFake
from tests.integration.night.crash_world import (
    AS_OF,
    ROOT,
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

pytestmark = pytest.mark.postgres
_KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


@dataclass
class World:
    env: dict[str, str]
    engine: sa.Engine
    stripe: StripeFake
    sendgrid: FakeSendGrid


@pytest.fixture
def world(tmp_path: Any) -> Iterator[World]:
    """A planned night in a schema of its own, against fakes served by this process."""
    if not POSTGRES_URL:
        pytest.skip("NUDGEFLOW_TEST_POSTGRES_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
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
                campaigns_dir=write_campaigns(tmp_path / "campaigns"),
                stripe_url=stripe.url,
                sendgrid_url=sendgrid.url,
                batch_size=25,
                max_workers=2,
            )
            app = app_from(env)
            try:
                assert prepare(app)["new_actions"] >= 300
            finally:
                close_app(app)
            engine = create_store_engine(url)
            try:
                yield World(env, engine, stripe, sendgrid)
            finally:
                engine.dispose()
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def start(world: World, role: str, *kill: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k in _KEPT} | world.env
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.night.worker_child",
            role,
            AS_OF.isoformat(),
            *kill,
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any] | None, str]:
    out, err = process.communicate(timeout=300)
    lines = out.strip().splitlines()
    summary = json.loads(lines[-1]) if process.returncode == 0 and lines else None
    return process.returncode, summary, out + err


def night_problems(world: World) -> list[str]:
    night = read_night(world.engine)
    return exactly_once_problems(night, world.stripe, world.sendgrid) + ledger_problems(night)


def claims_by_holder(world: World) -> dict[str, int]:
    with world.engine.connect() as connection:
        rows = connection.execute(
            sa.select(dispatch_batches.c.claimed_by, dispatch_batches.c.claims)
        )
        counts: dict[str, int] = {}
        for holder, claims in rows:
            counts[str(holder)] = counts.get(str(holder), 0) + 1
            counts["taken over"] = counts.get("taken over", 0) + max(0, int(claims) - 1)
        return counts


@pytest.mark.parametrize(
    ("point", "nth"),
    [("after_send_accepted", "15"), ("after_provider_create", "10"), ("after_reserve", "10")],
)
def test_a_worker_killed_mid_batch_is_taken_over_by_the_run(
    world: World, point: str, nth: str
) -> None:
    worker = start(world, "work", point, nth)
    run = start(world, "run")
    worker_code, _, worker_out = finished(worker)
    run_code, summary, run_out = finished(run)
    assert worker_code == -signal.SIGKILL, worker_out
    assert run_code == 0, run_out
    assert summary is not None
    night = read_night(world.engine)
    # The emails the kill caught between sending and sent (one per thread at most, and
    # the one it stopped after SendGrid accepted it): unknown, and sent once.
    unknown = night.in_state("unknown")
    assert len(unknown) <= 2, night.states()
    if point == "after_send_accepted":
        assert unknown, night.states()
    emailed = [email_action(m) for m in world.sendgrid.messages]
    assert all(emailed.count(a) == 1 for a in unknown)
    assert night.in_state("planned", "reserved", "reward_issued", "sending") == set()
    assert night_problems(world) == []
    assert claims_by_holder(world)["taken over"] >= 1  # the run finished the dead one's batch
    assert summary["outcomes"]["sent"] > 0


def test_the_run_killed_mid_batch_leaves_the_night_to_the_next_run(world: World) -> None:
    worker = start(world, "work")
    run = start(world, "run", "after_send_accepted", "40")
    run_code, _, run_out = finished(run)
    worker_code, worker_summary, worker_out = finished(worker)
    assert run_code == -signal.SIGKILL, run_out
    assert worker_code == 0, worker_out  # it worked what it could claim, then left
    assert worker_summary is not None and worker_summary["batches"] >= 1
    again = start(world, "run")
    code, summary, out = finished(again)
    assert code == 0, out
    assert summary is not None and summary["recovered"] >= 1
    night = read_night(world.engine)
    assert night.in_state("planned", "reserved", "reward_issued", "sending") == set()
    assert night_problems(world) == []
