"""Which files produced which sends, on SQLite and PostgreSQL: a run and the actions it
plans record the digest of the campaign folder and templates; the listings and the sends
export name the campaign file and templates behind each action, with their SHA-256."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa

from domain.campaign import Policy
from domain.plan import MemberState, NightInput
from domain.provenance import Provenance
from night.runs import open_run
from planning.planner import FixedBudgets, plan_night
from store.actions import list_actions, store_plan
from store.reports import find_actions, iter_sends, list_runs
from store.schema import actions
from store.sources import find_source, record_source
from tests.campaigns import make_campaign
from tests.integration.dispatch_rows import AS_OF, at, insert_members

NOW = datetime(2026, 6, 30, 21, 0, tzinfo=UTC)
POLICY = Policy((), 3, "nudge-fatigued", 90, "09:00", "18:00", "member")
FILES = {
    "campaigns/thanks.yaml": "a" * 64,
    "templates/t.html.j2": "b" * 64,
    "templates/t.txt.j2": "c" * 64,
}
DIRTY = Provenance(
    "d" * 64, "e" * 64, "f" * 64, "1" * 40, True, FILES, {"thanks": "campaigns/thanks.yaml"}
)


def test_a_run_and_its_actions_name_their_files(engine: sa.Engine) -> None:
    opened = open_run(engine, AS_OF, "nightly", None, lambda: NOW, DIRTY)
    with engine.begin() as connection:
        keys = insert_members(connection)
        campaign = make_campaign("thanks", template="t")
        states = {pk: MemberState(m, True, False) for m, pk in keys.items()}
        night = NightInput(AS_OF, [campaign], states, {"thanks": sorted(keys.values())}, {})
        plan = plan_night(night, POLICY, FixedBudgets())
        new = store_plan(
            connection, plan, AS_OF, 0, [campaign], now=NOW, source_digest=DIRTY.digest
        )
        assert new == len(keys)
        # The same night planned again on other files changes no action's record.
        store_plan(connection, plan, AS_OF, 0, [campaign], now=NOW, source_digest="0" * 64)
        assert {a["source_digest"] for a in list_actions(connection)} == {DIRTY.digest}
        connection.execute(
            sa.update(actions).values(state="sent", sending_at=at(AS_OF, 22), sent_at=at(AS_OF, 22))
        )

    with engine.connect() as connection:
        run = list_runs(connection, 5)[0]
        assert (run.id, run.source_digest, run.git_commit, run.git_dirty) == (
            opened.run_id,
            DIRTY.digest,
            "1" * 40,
            True,
        )
        listed = find_actions(connection).actions
        sends = list(iter_sends(connection))
    expected = {
        "source_digest": DIRTY.digest,
        "git_commit": "1" * 40,
        "campaign_file": "campaigns/thanks.yaml",
        "campaign_file_sha256": "a" * 64,
        "template_html_sha256": "b" * 64,
        "template_text_sha256": "c" * 64,
    }
    assert listed and all({k: a[k] for k in expected} == expected for a in listed)
    assert len(sends) == len(listed)
    assert all({k: s[k] for k in expected} == expected for s in sends)


def test_a_clean_commit_of_the_same_files_replaces_a_dirty_one(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        record_source(connection, DIRTY, now=NOW)
        # Seen again without git: the row keeps what it knew.
        record_source(connection, replace(DIRTY, git_commit=None, git_dirty=None), now=NOW)
        kept = find_source(connection, DIRTY.digest)
        assert kept is not None and kept["git_dirty"] is True
        clean = replace(DIRTY, git_commit="2" * 40, git_dirty=False)
        record_source(connection, clean, now=NOW)
        stored = find_source(connection, DIRTY.digest)
    assert stored is not None
    assert (stored["git_commit"], stored["git_dirty"], stored["files"]) == ("2" * 40, False, FILES)


def test_an_unknown_digest_has_no_source(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        assert find_source(connection, "0" * 64) is None
