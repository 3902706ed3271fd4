"""``validate`` renders every template with a sample of the reward its campaign gives, with
every value the kind can have and with only those it always has, and reports the file and
line where a template prints a value the reward or member does not have."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from delivery.render import render_email
from delivery.template_context import sample_context
from delivery.validation import validate_campaigns
from planning.campaign_files import load_campaign_set

ROOT = Path(__file__).resolve().parents[3]
AS_OF = date(2026, 11, 21)


@pytest.fixture
def shipped(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the shipped campaigns and templates to break."""
    campaigns = shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    templates = shutil.copytree(ROOT / "templates/email", tmp_path / "templates")
    return campaigns, templates


def _insert(path: Path, after_line: int, text: str) -> int:
    """Insert ``text`` as a line after line ``after_line``; the 1-based line it lands on."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(after_line, text + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return after_line + 1


def _messages(campaigns: Path, templates: Path) -> list[str]:
    report = validate_campaigns(campaigns, templates, seen_event_types=None, as_of=AS_OF)
    return [f"{p.path.rsplit('/', 1)[-1]}:{p.line}: {p.message}" for p in report.problems]


def test_a_gift_email_that_prints_a_code_is_reported_at_its_line(
    shipped: tuple[Path, Path],
) -> None:
    campaigns, templates = shipped
    line = _insert(templates / "adopter_thank_you_gift.txt.j2", 7, "Your code: {{ reward.code }}")
    assert _messages(campaigns, templates) == [
        f"adopter-thank-you-gift.yaml:22: {templates}/adopter_thank_you_gift.txt.j2:{line}: "
        "reward.code has no value for a gift reward: show it inside "
        "{% if reward.code %}…{% endif %}"
    ]


def test_a_discount_link_and_a_stripe_credit_code_are_missing_values(
    shipped: tuple[Path, Path],
) -> None:
    campaigns, templates = shipped
    link = _insert(
        templates / "loyalist_discount.html.j2", 9, '<a href="{{ reward.link }}">Redeem</a>'
    )
    # A credit's code comes from the local issuer only: a Stripe balance credit has none.
    code = _insert(templates / "referral_bonus.txt.j2", 6, "Code: {{ reward.code }}")
    found = _messages(campaigns, templates)
    assert f"loyalist_discount.html.j2:{link}: reward.link has no value for a discount" in str(
        found
    )
    assert f"referral_bonus.txt.j2:{code}: reward.code has no value for a credit" in str(found)
    assert len(found) == 2


def test_a_guarded_value_is_fine_and_its_branch_is_rendered(
    shipped: tuple[Path, Path],
) -> None:
    campaigns, templates = shipped
    text = templates / "referral_bonus.txt.j2"
    _insert(text, 6, "{% if reward.code %}Code: {{ reward.code }}{% endif %}")
    assert _messages(campaigns, templates) == []
    # The branch runs with the full sample, so an error inside it is found too.
    line = _insert(text, 6, "{% if reward.code %}{{ reward.code.nope }}{% endif %}")
    (found,) = _messages(campaigns, templates)
    assert f"referral_bonus.txt.j2:{line}:" in found


def test_a_campaign_without_a_reward_cannot_print_one(shipped: tuple[Path, Path]) -> None:
    campaigns, templates = shipped
    line = _insert(templates / "birthday_card.html.j2", 3, "<p>{{ reward.value }}</p>")
    (found,) = _messages(campaigns, templates)
    assert f"birthday_card.html.j2:{line}:" in found
    assert "has no attribute 'value'" in found


def test_the_sending_render_prints_a_missing_value_as_nothing(
    shipped: tuple[Path, Path],
) -> None:
    campaigns, templates = shipped
    _insert(templates / "adopter_thank_you_gift.txt.j2", 7, "[{{ reward.code }}]")
    _insert(templates / "adopter_thank_you_gift.html.j2", 6, '<a href="{{ reward.link }}">x</a>')
    _insert(templates / "adopter_thank_you_gift.html.j2", 6, "{{ member.attributes.get('x') }}")
    (campaign,) = [
        c for c in load_campaign_set(campaigns).campaigns if c.id == "adopter-thank-you-gift"
    ]
    email = render_email(templates, campaign.template, campaign.subject, sample_context(campaign))
    assert "[]" in email.text and "None" not in email.text
    assert 'href=""' in email.html and "None" not in email.html
