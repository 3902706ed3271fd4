"""Campaigns targeting a pathway position, on SQLite and PostgreSQL: candidate selection in
SQL picks exactly the members ``why`` (``audience.pathways.explain_position``) says are at
the position, and ``why`` says where each of the others stands."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from audience.facts import EventFact
from audience.pathways import PathwaySpec
from night.explain import explain_member
from night.plan import rehearse
from planning.campaign_files import CampaignSet
from planning.pathway_files import with_pathways
from tests.integration import pathway_community as pc
from tests.integration.community import DAY, Person, insert_people
from tests.integration.store.test_plan_store import (
    AS_OF,
    END,
    PARIS,
    campaign,
    lifecycle,
    policy,
    purchase,
    refresh,
)

FIRST = AS_OF - timedelta(days=30)  # the first refresh: loyalists are found that day


def _loyal(name: str, *later: str) -> Person:
    bought = [purchase(END - d * DAY) for d in (100, 90, 80)]
    return Person(
        name, None, bought + [EventFact(t, END - (10 - i) * DAY) for i, t in enumerate(later)]
    )


def test_a_pathway_position_is_selected_in_sql_and_explained(engine: sa.Engine) -> None:
    people = [
        _loyal("ann", "answer_posted"),  # done answered, not guest-post: the target
        _loyal("bob"),
        Person("cat", None, [purchase(END - 50 * DAY)]),  # an adopter: not on the pathway
        _loyal("dan", "answer_posted", "guest_post"),
        _loyal("eve", "answer_posted", "answer_posted", "answer_posted"),  # at the end
    ]
    with engine.begin() as connection:
        insert_people(connection, people)
    refresh(engine, FIRST)
    the_lifecycle = lifecycle()
    pathway = PathwaySpec.model_validate(pc.PATHWAY_FILE).compile(the_lifecycle.stage_ids)
    target = {"id": pathway.id, "done": "answered", "not_done": ["guest-post"]}
    nudge = with_pathways(campaign("next-step", audience={"pathway": target}), (pathway,))
    campaigns = CampaignSet(the_lifecycle, policy(), (nudge,), {}, (pathway,))

    lines = {}
    with rehearse(engine, campaigns, PARIS, "USD", AS_OF) as rehearsal:
        selected = {a.member_id for a in rehearsal.night.plan.campaigns[0].actions}
        for person in people:
            [(_, text)] = explain_member(rehearsal, person.member_id)
            lines[person.member_id] = text

    assert selected == {"ann"}
    assert lines["ann"].startswith("selected: no reward")
    assert lines["ann"].endswith("on pathway retention-to-advocacy, next step: guest-post")
    assert lines["bob"] == (
        "not in the audience: has not yet done key action answered of pathway retention-to-advocacy"
    )
    assert lines["cat"] == (
        "not in the audience: is not on pathway retention-to-advocacy "
        "(it starts with: reached stage loyalist)"
    )
    assert lines["dan"] == (
        "not in the audience: has already done key action guest-post of pathway "
        "retention-to-advocacy"
    )
    assert lines["eve"] == (
        "not in the audience: has already reached the end of pathway retention-to-advocacy"
    )
