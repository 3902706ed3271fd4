"""Dispatch renders the variant an action was planned with: its stored template, and the
variant's subject line while the campaign file still has the variant."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from domain.campaign import Variant
from night.settle import planned_terms
from store.outbox import OutboxAction
from tests.campaigns import make_campaign

CAMPAIGN = replace(
    make_campaign("ab", name="AB", template="base", subject="Hi"),
    variants=(Variant("plain", "base", "Hi", 1.0), Variant("bold", "bold_email", "Now!", 1.0)),
)


def _action(variant: str | None, template: str) -> OutboxAction:
    return OutboxAction(
        action_id="a1",
        campaign_id="ab",
        member_pk=1,
        as_of=date(2026, 3, 10),
        state="planned",
        reward=None,
        cost_minor=0,
        currency=None,
        template=template,
        reward_ref=None,
        attempts=0,
        member={},
        consent=True,
        variant=variant,
    )


def test_the_variant_decides_template_and_subject() -> None:
    terms = planned_terms(CAMPAIGN, _action("bold", "bold_email"))
    assert (terms.template, terms.subject) == ("bold_email", "Now!")
    plain = planned_terms(CAMPAIGN, _action("plain", "base"))
    assert (plain.template, plain.subject) == ("base", "Hi")


def test_a_variant_gone_from_the_file_keeps_its_template_and_the_campaign_subject() -> None:
    terms = planned_terms(CAMPAIGN, _action("removed", "old_email"))
    assert (terms.template, terms.subject) == ("old_email", "Hi")
    assert planned_terms(CAMPAIGN, _action(None, "base")).subject == "Hi"
