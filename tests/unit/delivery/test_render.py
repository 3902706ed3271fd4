"""Email rendering: autoescaping, StrictUndefined, the sandbox and the subject line."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from delivery.render import RenderedEmail, render_email
from delivery.sandbox import TemplateRenderError, make_environment
from delivery.template_checks import inspect_template
from delivery.template_context import sample_context
from planning.campaign_files import load_campaign_set
from tests.unit.delivery.templating import render_context, write_templates

ROOT = Path(__file__).resolve().parents[3]
LAYOUT_HTML = (
    "<html><body>{% block content %}{% endblock %}\n"
    '<a href="{{ links.unsubscribe }}">Unsubscribe</a></body></html>\n'
)


def _write(folder: Path, html: str) -> Path:
    return write_templates(folder, html, layout_html=LAYOUT_HTML)


def test_renders_subject_html_and_text(tmp_path: Path) -> None:
    templates = _write(tmp_path, "<p>Hi {{ member.first_name }}</p>")
    email = render_email(templates, "hello", "Hello {{ member.first_name }}", render_context())
    assert email == RenderedEmail(
        subject="Hello Ada",
        html='<html><body><p>Hi Ada</p><a href="https://x.test/u/1">Unsubscribe</a></body></html>\n',
        text="Hi Ada\nUnsubscribe: https://x.test/u/1\n",
    )


def test_member_data_is_escaped_in_html_and_plain_in_text(tmp_path: Path) -> None:
    templates = _write(tmp_path, "<p>Hi {{ member.first_name }}</p>")
    name = '<script>alert("x")</script> & Co'
    email = render_email(
        templates, "hello", "Hi {{ member.first_name }}", render_context(first_name=name)
    )
    assert "<p>Hi &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co</p>" in email.html
    assert "<script>" not in email.html
    assert email.text.startswith(f"Hi {name}\n")
    assert email.subject == f"Hi {name}"  # a header, not HTML: kept as written


def test_a_typo_fails_with_the_template_and_line(tmp_path: Path) -> None:
    templates = _write(tmp_path, "<p>Hi</p>\n<p>{{ member.frist_name }}</p>")
    with pytest.raises(TemplateRenderError) as caught:
        render_email(templates, "hello", "Hello", render_context())
    assert caught.value.reason == "undefined"
    assert caught.value.path == str(templates / "hello.html.j2")
    assert caught.value.line == 2
    assert "frist_name" in caught.value.detail


def test_a_typo_in_the_subject_fails(tmp_path: Path) -> None:
    templates = _write(tmp_path, "<p>Hi</p>")
    with pytest.raises(TemplateRenderError) as caught:
        render_email(templates, "hello", "Hi {{ membr.first_name }}", render_context())
    assert caught.value.reason == "undefined"
    assert "'membr' is undefined" in caught.value.detail


@pytest.mark.parametrize(
    "expression",
    [
        "''.__class__.__mro__",
        "cycler.__init__.__globals__",
        "lipsum.__globals__",
        "member.first_name|attr('__class__')",
        "now.__class__",
        "member.update({'email': 'evil@example.com'})",
    ],
)
def test_sandbox_escapes_are_refused(tmp_path: Path, expression: str) -> None:
    templates = _write(tmp_path, "<p>{{ " + expression + " }}</p>")
    with pytest.raises(TemplateRenderError) as caught:
        render_email(templates, "hello", "Hello", render_context())
    assert caught.value.reason == "unsafe"
    assert caught.value.detail.startswith("refused by the sandbox: ")


@pytest.mark.parametrize("subject", ["Hi\r\nBcc: all@example.com", "Hi {{ member.first_name }}"])
def test_line_breaks_in_the_rendered_subject_are_refused(tmp_path: Path, subject: str) -> None:
    templates = _write(tmp_path, "<p>Hi</p>")
    with pytest.raises(TemplateRenderError) as caught:
        render_email(
            templates, "hello", subject, render_context(first_name="Ada\nBcc: x@example.com")
        )
    assert caught.value.reason == "subject"
    assert caught.value.detail == "the rendered subject contains a line break"


def test_syntax_errors_name_the_file_and_line(tmp_path: Path) -> None:
    templates = _write(tmp_path, "<p>\n{{ member.first_name }</p>")
    with pytest.raises(TemplateRenderError) as caught:
        render_email(templates, "hello", "Hi", render_context())
    assert (caught.value.reason, caught.value.line) == ("syntax", 2)
    assert caught.value.path == str(templates / "hello.html.j2")


def test_inspection_finds_problems_in_branches_a_sample_would_not_take(tmp_path: Path) -> None:
    html = (
        "{% if reward %}\n{{ reward.cod }}\n{{ member.__dict__ }}{% endif %}\n{{ memberr.email }}"
    )
    templates = _write(tmp_path, html)
    found = inspect_template(make_environment(templates), "hello.html.j2")
    assert [(e.reason, e.line, e.detail) for e in found] == [
        ("undefined", 2, "unknown variable 'reward.cod' (did you mean 'reward.code'?)"),
        ("unsafe", 3, "refused by the sandbox: '__dict__' (names starting with '_' are private)"),
        ("undefined", 4, "unknown variable 'memberr' (did you mean 'member'?)"),
    ]


def test_sample_context_fits_every_shipped_campaign() -> None:
    campaigns = {c.id: c for c in load_campaign_set(ROOT / "campaigns").campaigns}
    context = sample_context(campaigns["loyalist-discount"], date(2026, 11, 21))
    assert context["member"]["first_name"] == "Ada"
    assert context["member"]["stage"] == "loyalist"
    assert context["reward"] == {  # a discount has a code and no link (docs/email.md)
        "kind": "discount",
        "code": "THANKS-7Q4M2",
        "value": "15% off",
        "expires_at": datetime(2026, 12, 22, tzinfo=UTC),
        "expires_on": date(2026, 12, 21),
        "link": None,
    }
    assert sample_context(campaigns["birthday-card"])["reward"] is None
    assert campaigns["advocate-referral-bonus"].reward.value_text() == "20.00 USD credit"  # type: ignore[union-attr]
    for campaign in campaigns.values():
        email = render_email(
            ROOT / "templates/email", campaign.template, campaign.subject, sample_context(campaign)
        )
        assert "https://example.com/unsubscribe/sample-token" in email.html
        assert "https://example.com/unsubscribe/sample-token" in email.text
        assert "Ada" in email.subject
