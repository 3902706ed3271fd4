"""``nudgeflow run`` through the real console script against the Stripe and SendGrid fakes
served from this test process: a whole night end to end, two runs started together (one
exits 3, the result is a single run's), and a dry run.

The runs talk to the session's Prefect test server (``PREFECT_API_URL``), as they would to
a ``prefect server start`` in production, instead of each starting a temporary one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from store.schema import actions, members
from tests.fakes.sendgrid_api import FakeSendGrid
from tests.fakes.stripe_api import StripeFake
from tests.functional.runner import Nudgeflow
from tests.integration.night.test_dispatch import (
    AS_OF,
    SIGNING_KEY,
    World,
    close_world,
    make_world,
    members_for,
)

pytestmark = pytest.mark.prefect
# Three members for each of the four campaigns: credits and discounts go through Stripe.
TAGGED = members_for("credit", "discount", "invite", "plain", n=3)
STRIPE_KINDS = ("credit", "discount")
DAY = AS_OF.isoformat()


@pytest.fixture
def stripe() -> Iterator[StripeFake]:
    with StripeFake() as fake:
        yield fake


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as fake:
        yield fake


class Night:
    """A database of members (not yet planned), the fakes, and how to run the CLI on it."""

    def __init__(
        self, world: World, stripe: StripeFake, sendgrid: FakeSendGrid, nudgeflow: Nudgeflow
    ) -> None:
        self.world = world
        self.stripe = stripe
        self.sendgrid = sendgrid
        self.nudgeflow = nudgeflow

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.nudgeflow(*args)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return self.nudgeflow.start(*args)

    def actions(self) -> dict[str, tuple[str, str, str | None, str | None]]:
        """action_id → (member_id, state, reward_ref, message_id)."""
        engine = sa.create_engine(self.world.db_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    sa.select(
                        actions.c.action_id,
                        members.c.member_id,
                        actions.c.state,
                        actions.c.reward_ref,
                        actions.c.message_id,
                    ).join(members, members.c.id == actions.c.member_pk)
                ).all()
        finally:
            engine.dispose()
        return {r.action_id: (r.member_id, r.state, r.reward_ref, r.message_id) for r in rows}

    def snapshot(self) -> dict[str, list[tuple[object, ...]]]:
        """Every row of every table, to show that a command wrote nothing."""
        engine = sa.create_engine(self.world.db_url)
        try:
            tables = sa.MetaData()
            tables.reflect(engine)
            with engine.connect() as connection:
                return {
                    name: sorted(
                        (tuple(row) for row in connection.execute(sa.select(table))), key=repr
                    )
                    for name, table in tables.tables.items()
                }
        finally:
            engine.dispose()

    def assert_one_nights_effects(self) -> dict[str, tuple[str, str, str | None, str | None]]:
        """What one run of the night does: every action sent, one Stripe object per credit
        and discount, one email per action, the message ids stored."""
        stored = self.actions()
        assert sorted(m for m, *_ in stored.values()) == sorted(
            m for ids in TAGGED.values() for m in ids
        )
        assert Counter(state for _, state, _, _ in stored.values()) == {"sent": len(stored)}
        emailed = Counter(m.body["custom_args"]["action_id"] for m in self.sendgrid.messages)
        assert emailed == dict.fromkeys(stored, 1)
        message_ids = {
            m.body["custom_args"]["action_id"]: m.message_id for m in self.sendgrid.messages
        }
        for action_id, (member_id, _, reward_ref, message_id) in stored.items():
            assert message_id == message_ids[action_id]
            objects = self.stripe.objects_with_metadata("action_id", action_id)
            if member_id.startswith(STRIPE_KINDS):
                assert [o["id"] for o in objects] == [reward_ref], member_id
            else:
                assert objects == [], member_id
        return stored


@pytest.fixture
def night(
    db_url: str,
    tmp_path: Path,
    stripe: StripeFake,
    sendgrid: FakeSendGrid,
    nudgeflow: Nudgeflow,
    prefect_api_url: str,
) -> Night:
    world = make_world(db_url, tmp_path)
    app = world.app()
    with app.engine.begin() as connection:
        world.people(connection, TAGGED)
        for kind in STRIPE_KINDS:
            for member_id in TAGGED[kind]:
                customer = f"cus_{member_id.replace('-', '')}"
                stripe.add_customer(customer, email=f"{member_id}@example.com")
                connection.execute(
                    sa.update(members)
                    .where(members.c.member_id == member_id)
                    .values(stripe_customer_id=customer)
                )
    close_world(world)
    # The world's settings, the fakes as Stripe and SendGrid, the session's Prefect server.
    on_world = nudgeflow.configure(
        cwd=world.root,
        timeout=300,
        PREFECT_API_URL=prefect_api_url,
        NUDGEFLOW_DATABASE_URL=world.db_url,
        NUDGEFLOW_CAMPAIGNS_DIR=str(world.campaigns_dir),
        NUDGEFLOW_TEMPLATES_DIR=str(world.root / "templates"),
        NUDGEFLOW_TIMEZONE="Europe/Paris",
        NUDGEFLOW_SIGNING_KEY=SIGNING_KEY,
        NUDGEFLOW_REWARDS__PROVIDER="stripe",
        NUDGEFLOW_STRIPE__API_KEY="sk_test_nightly",
        NUDGEFLOW_STRIPE__BASE_URL=stripe.url,
        NUDGEFLOW_EMAIL__TRANSPORT="sendgrid",
        NUDGEFLOW_SENDGRID__API_KEY=sendgrid.api_key,
        NUDGEFLOW_SENDGRID__BASE_URL=sendgrid.url,
        NUDGEFLOW_DISPATCH__BATCH_SIZE="5",
    )
    return Night(world, stripe, sendgrid, on_world)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_night_end_to_end_against_the_stripe_and_sendgrid_fakes(night: Night) -> None:
    result = night.run("run", "--as-of", DAY)

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"night {DAY}: 12 profiles refreshed" in out
    assert f"Night {DAY}" in out
    report = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in out.splitlines()
        if line.startswith("│") and line.split("│")[1].strip() in TAGGED
    }
    # matched, held out, sent, rewards, value, failed, unknown, pending
    assert report["credit"][:4] == ["3", "0", "3", "3"]
    assert report["credit"][4] == "15.00 USD"
    assert report["discount"][2:4] == ["3", "3"]
    assert report["plain"][2:4] == ["3", "0"]
    assert all(row[5:] == ["0", "0", "0"] for row in report.values()), report
    stored = night.assert_one_nights_effects()

    verified = night.run("ledger", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr

    runs = night.run("runs", "--json")
    assert runs.returncode == 0, runs.stderr
    listed = json.loads(runs.stdout)
    assert [(r["as_of"], r["kind"], r["status"]) for r in listed] == [(DAY, "nightly", "completed")]
    assert listed[0]["sent"] == 12

    exported = night.run("sends", "export", "--format", "csv")
    assert exported.returncode == 0, exported.stderr
    sends = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert {s["action_id"]: (s["state"], s["message_id"]) for s in sends} == {
        action_id: ("sent", message_id) for action_id, (_, _, _, message_id) in stored.items()
    }
    assert all(s["message_id"].startswith("fake-") for s in sends)  # SendGrid's X-Message-Id

    # Which files produced which sends: the run and every send name the same digest of the
    # campaign folder and templates, and each send its campaign file's and templates' SHA-256.
    digest = listed[0]["source_digest"]
    assert len(digest) == 64 and listed[0]["git_commit"] is None  # not in a git checkout
    assert {s["source_digest"] for s in sends} == {digest}
    root = night.world.root
    for send in sends:
        campaign_file = send["campaign_file"]
        assert campaign_file == f"campaigns/{send['campaign_id']}.yaml"
        assert send["campaign_file_sha256"] == _sha256(root / campaign_file)
        assert send["template_html_sha256"] == _sha256(root / "templates/nudge.html.j2")
        assert send["template_text_sha256"] == _sha256(root / "templates/nudge.txt.j2")
    table = night.run("runs")
    assert digest[:12] in table.stdout


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_runs_started_together_one_runs_the_other_exits_3(night: Night) -> None:
    first = night.start("run", "--as-of", DAY)
    second = night.start("run", "--as-of", DAY)
    outcomes = []
    for process in (first, second):
        stdout, stderr = process.communicate(timeout=300)
        outcomes.append((process.returncode, stdout, stderr))

    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 3], outcomes
    _, _, refused = next(o for o in outcomes if o[0] == 3)
    lines = refused.strip().splitlines()
    assert len(lines) == 1, refused
    assert lines[0].startswith("error: another run is in progress (started "), refused
    assert " by " in lines[0]
    night.assert_one_nights_effects()


def test_a_dry_run_writes_nothing_and_shows_what_the_run_would_do(night: Night) -> None:
    before = night.snapshot()
    result = night.run("run", "--dry-run", "--as-of", DAY)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Night {DAY} (dry run: nothing stored, issued or sent)" in result.stdout
    report = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in result.stdout.splitlines()
        if line.startswith("│") and line.split("│")[1].strip() in TAGGED
    }
    # What the real run would do: matched, held out, sent, rewards, value (estimated).
    assert report["credit"][:5] == ["3", "0", "3", "3", "15.00 USD"]
    assert report["plain"][2:4] == ["3", "0"]
    assert night.snapshot() == before  # no profiles, history, actions, run record or lease
    assert night.sendgrid.messages == [] and night.sendgrid.attempts == 0
    assert night.stripe.requests == []
    runs = json.loads(night.run("runs", "--json").stdout)
    assert runs == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_earlier_night_is_refused_unless_rewind_says_so(night: Night) -> None:
    assert night.run("run", "--as-of", DAY).returncode == 0
    earlier = (date.fromisoformat(DAY) - timedelta(days=1)).isoformat()

    refused = night.run("run", "--as-of", earlier)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert lines[0].startswith(f"error: night {earlier} is before nights already run ({DAY})")
    assert "--rewind" in lines[0]

    rewound = night.run("run", "--as-of", earlier, "--rewind")
    assert rewound.returncode == 0, rewound.stdout + rewound.stderr
    assert f"rewinding the nights after {earlier}: {DAY}" in rewound.stdout
    runs = json.loads(night.run("runs", "--json").stdout)
    assert sorted((r["as_of"], r["status"]) for r in runs) == [
        (earlier, "completed"),
        (DAY, "rewound"),
    ]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_workers_share_a_night_on_postgresql(night: Night) -> None:
    """``--workers 2`` starts a ``nudgeflow worker`` that joins the run: the batches are
    claimed by both processes, the night's effects are one night's, the worker is gone."""
    result = night.nudgeflow(
        "run",
        "--as-of",
        DAY,
        "--workers",
        "2",
        NUDGEFLOW_DISPATCH__BATCH_SIZE="1",  # twelve batches to share
        NUDGEFLOW_STRIPE__MAX_REQUESTS_PER_SECOND="10",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    night.assert_one_nights_effects()
    verified = night.run("ledger", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    engine = sa.create_engine(night.world.db_url)
    try:
        with engine.connect() as connection:
            holders = connection.execute(
                sa.text("SELECT DISTINCT claimed_by FROM dispatch_batches")
            ).scalars()
            pids = {int(str(h).rpartition(":")[2]) for h in holders}
            closed = connection.execute(
                sa.text("SELECT closed_at IS NOT NULL FROM dispatch_rounds")
            ).scalar_one()
    finally:
        engine.dispose()
    assert len(pids) == 2, pids  # the run's process and the worker it started
    assert closed
    for pid in pids:  # both are gone: the run returned, the worker left with it
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_workers_on_sqlite_run_in_one_process_and_say_why(night: Night) -> None:
    result = night.run("run", "--as-of", DAY, "--workers", "3")

    assert result.returncode == 0, result.stdout + result.stderr
    notes = [line for line in result.stdout.splitlines() if "--workers 3" in line]
    assert len(notes) == 1 and "SQLite lets one process write at a time" in notes[0]
    night.assert_one_nights_effects()

    worker = night.run("worker", "--as-of", DAY, "--wait", "0")
    assert worker.returncode == 2
    assert worker.stderr.count("\n") == 1 and "SQLite" in worker.stderr
    assert "Traceback" not in worker.stderr
