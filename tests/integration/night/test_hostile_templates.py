"""A template that fails for some members (a Python error, a broken limit) fails their
actions with the reason, and the batch carries on with everyone else, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audience.facts import EventFact
from bootstrap.app import App, build_app
from night.dispatch import dispatch_night
from night.plan import plan
from night.refresh import refresh
from nudgeflow.timeutil import day_end
from settings import load_settings
from store.schema import actions, members
from tests.integration.community import DAY, Person, insert_people

ROOT = Path(__file__).resolve().parents[3]
AS_OF = date(2026, 5, 4)

CAMPAIGN = """\
id: hello
name: Hello
audience: {tags: {any_of: [hello]}}
trigger: {on: schedule}
eligibility: {once_per_member: true}
email: {template: hello, subject: "Hello {{ member.member_id }}"}
"""
# Each hostile member trips the template in its own way; everyone else gets a plain email.
BODY = (
    "Hi {{ member.member_id }}"
    '{% if member.member_id == "divider" %}{{ 1 / 0 }}{% endif %}'
    '{% if member.member_id == "adder" %}{{ 1 + member.member_id }}{% endif %}'
    '{% if member.member_id == "looper" %}'
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    "{% endif %}"
    '{% if member.member_id == "power" %}{{ 9 ** (9 ** 9) }}{% endif %}'
    '{% if member.member_id == "caller" %}'
    "{% macro again(n) %}{{ again(n) }}{{ again(n) }}{% endmacro %}{{ again(1) }}"
    "{% endif %}"
)
HOSTILE = {
    "divider": "division by zero",
    "adder": "unsupported operand",
    "looper": "more than 100,000 loop iterations",
    "power": "a number larger than 2**4096",
    "caller": "nested more than 50 deep",
}
FRIENDLY = [f"friend-{n}" for n in range(7)]


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    (campaigns / "lifecycle.yaml").write_text((ROOT / "campaigns/lifecycle.yaml").read_text())
    (campaigns / "hello.yaml").write_text(CAMPAIGN)
    templates = tmp_path / "templates"
    templates.mkdir()
    for suffix in ("html", "txt"):
        layout = f"_layout.{suffix}.j2"
        (templates / layout).write_text((ROOT / "templates/email" / layout).read_text())
        (templates / f"hello.{suffix}.j2").write_text(
            f'{{% extends "{layout}" %}}{{% block content %}}{BODY}{{% endblock %}}'
        )
    settings: dict[str, Any] = {
        "database_url": db_url,
        "campaigns_dir": campaigns,
        "templates_dir": templates,
        "timezone": "Europe/Paris",
        "signing_key": "test-signing-key",
        "email": {"transport": "file", "outbox_dir": tmp_path / "outbox"},
        "dispatch": {"batch_size": 4, "max_workers": 3},
    }
    built = build_app(load_settings(**settings))
    yield built
    built.engine.dispose()


def _states(app: App) -> dict[str, tuple[str, str | None]]:
    with app.engine.connect() as connection:
        rows = connection.execute(
            sa.select(members.c.member_id, actions.c.state, actions.c.reason).join(
                members, members.c.id == actions.c.member_pk
            )
        ).all()
    return {member_id: (state, reason) for member_id, state, reason in rows}


def test_hostile_templates_fail_their_actions_and_the_batch_goes_on(app: App) -> None:
    bought = day_end(AS_OF, app.settings.zone) - 20 * DAY
    people = [
        Person(m, None, [EventFact("purchase", bought, 1000, "USD")], frozenset({"hello"}))
        for m in [*HOSTILE, *FRIENDLY]
    ]
    with app.engine.begin() as connection:
        insert_people(connection, people)
    refresh(app.night(AS_OF))
    plan(app.night(AS_OF))

    night = app.night(AS_OF)
    run = dispatch_night(app.dispatcher(night), night.batch_size)

    states = _states(app)
    assert {m: states[m][0] for m in FRIENDLY} == dict.fromkeys(FRIENDLY, "sent")
    for member_id, reason in HOSTILE.items():
        state, stored = states[member_id]
        assert state == "failed", member_id
        assert stored is not None and stored.startswith("cannot build the email: "), stored
        assert reason in stored, stored
    assert run is not None
