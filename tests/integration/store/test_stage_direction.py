"""Stage entry fires on moves up by default: a loyalist demoted to adopter does not enter a
welcome campaign for new adopters; ``direction: down`` (a win-back) or ``any`` asks for the
other moves. From the campaign file to the candidates, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from nudgeflow.timeutil import day_end
from planning.campaign_files import load_campaign_set
from store.audience_sql import select_candidates
from store.schema import profiles, stage_history
from tests.integration.community import Person, insert_people

ROOT = Path(__file__).resolve().parents[3]
ZONE = ZoneInfo("UTC")
AS_OF = date(2026, 5, 4)
WELCOME = """\
id: welcome
name: Welcome to adopter
audience: {stage: adopter}
trigger: {on: stage_entry}
eligibility: {once_per_member: true}
email: {template: adopter_welcome, subject: Welcome}
response: {counts_as: [purchase], within: 7d}
"""


def campaigns(tmp_path: Path) -> list:  # type: ignore[type-arg]
    folder = tmp_path / "campaigns"
    folder.mkdir()
    shutil.copy(ROOT / "campaigns/lifecycle.yaml", folder / "lifecycle.yaml")
    for direction in ("up", "down", "any"):
        text = WELCOME.replace("id: welcome", f"id: welcome-{direction}")
        text = text.replace("{on: stage_entry}", f"{{on: stage_entry, direction: {direction}}}")
        (folder / f"welcome-{direction}.yaml").write_text(text)
    (folder / "welcome.yaml").write_text(WELCOME)  # no direction: up
    return list(load_campaign_set(folder).campaigns)


def test_a_demoted_member_enters_only_down_and_any_campaigns(
    engine: sa.Engine, tmp_path: Path
) -> None:
    chosen = campaigns(tmp_path)
    with engine.begin() as connection:
        keys = insert_people(
            connection, [Person("demoted", None), Person("promoted", None), Person("new", None)]
        )
        history = [
            (keys["demoted"], "loyalist", AS_OF - timedelta(days=90), AS_OF),
            (keys["demoted"], "adopter", AS_OF, None),
            (keys["new"], "adopter", AS_OF, None),  # a first stage: a move up from none
        ]
        connection.execute(
            sa.insert(stage_history),
            [
                {"member_pk": pk, "stage": s, "entered_on": on, "left_on": off, "initial": False}
                for pk, s, on, off in history
            ],
        )
        connection.execute(
            sa.insert(profiles),
            [
                {
                    "member_pk": pk,
                    "as_of": AS_OF,
                    "stage": "adopter",
                    "stage_entered_on": AS_OF,
                    "frequency": 0,
                    "monetary_minor": 0,
                    "currency": "USD",
                    "score": 0.0,
                }
                for pk in (keys["demoted"], keys["new"])
            ],
        )
        found = select_candidates(
            connection, chosen, AS_OF, day_end(AS_OF, ZONE), AS_OF - timedelta(days=1), ZONE
        )
    names = {pk: name for name, pk in keys.items()}
    picked = {cid: sorted(names[pk] for pk in pks) for cid, pks in found.items()}
    assert picked == {
        "welcome": ["new"],
        "welcome-up": ["new"],
        "welcome-down": ["demoted"],
        "welcome-any": ["demoted", "new"],
    }
