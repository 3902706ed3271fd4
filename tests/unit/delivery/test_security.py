"""Security: the template sandbox, escaping of member data, and header injection."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from delivery.message import HeaderInjectionError, build_message
from delivery.render import EmailRenderer, RenderedEmail, render_email
from delivery.sandbox import TemplateRenderError, make_environment
from delivery.template_checks import inspect_source
from tests.unit.delivery.templating import render_context, write_templates

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ member.__class__ }}",
    "{{ member._private }}",
    "{{ member['__class__'] }}",
    "{{ member | attr('__class__') }}",
    "{{ now.__class__.__subclasses__() }}",
]


@pytest.mark.parametrize("escape", ESCAPES)
def test_sandbox_escapes_are_refused_at_validate_time(tmp_path: Path, escape: str) -> None:
    env = make_environment(tmp_path)
    problems = inspect_source(env, f"<p>{escape}</p>", "hello.html.j2")
    assert problems, escape
    assert any(p.reason == "unsafe" for p in problems), escape


@pytest.mark.parametrize("escape", ESCAPES)
def test_sandbox_escapes_fail_at_render_time_too(tmp_path: Path, escape: str) -> None:
    templates = write_templates(tmp_path, html=escape)
    with pytest.raises(TemplateRenderError) as caught:
        EmailRenderer(templates).render("hello", "Hi", render_context())
    assert caught.value.reason in {"unsafe", "undefined"}


def test_sandbox_escape_in_a_subject_is_refused(tmp_path: Path) -> None:
    templates = write_templates(tmp_path, html="<p>hi</p>")
    with pytest.raises(TemplateRenderError) as caught:
        render_email(templates, "hello", "{{ cycler.__init__.__globals__ }}", render_context())
    assert caught.value.reason == "unsafe"


def test_sandbox_cannot_mutate_the_context(tmp_path: Path) -> None:
    templates = write_templates(tmp_path, html="{{ member.attributes.update({'x': 1}) }}")
    with pytest.raises(TemplateRenderError) as caught:
        EmailRenderer(templates).render("hello", "Hi", render_context(attributes={}))
    assert caught.value.reason == "unsafe"


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "Co"'


def test_member_data_is_escaped_in_html_and_plain_in_text(tmp_path: Path) -> None:
    templates = write_templates(tmp_path, html="<p>Hi {{ member.first_name }}</p>")
    email = EmailRenderer(templates).render(
        "hello", "Hi {{ member.first_name }}", render_context(first_name=HOSTILE)
    )
    assert "<script>" not in email.html
    assert "<img" not in email.html
    assert "&lt;script&gt;" in email.html
    assert 'style="color: red;"' in email.html  # the CSS was inlined around it
    assert email.text.startswith(f"Hi {HOSTILE}\n")
    assert email.subject == f"Hi {HOSTILE}"


def test_css_inlining_does_not_fetch_remote_stylesheets(tmp_path: Path) -> None:
    # A refused connection would raise if css-inline tried to load it.
    templates = write_templates(
        tmp_path, html='<link rel="stylesheet" href="http://127.0.0.1:9/evil.css"><p>x</p>'
    )
    email = EmailRenderer(templates).render("hello", "Hi", render_context())
    assert "evil.css" not in email.html


@pytest.mark.parametrize(
    "field",
    ["\r\nBcc: everyone@example.com", "\nX-Evil: 1", "\rX", "a\u2028b", "a\x00b", "a\x85b"],
)
def test_no_header_injection_through_names(field: str) -> None:
    with pytest.raises(HeaderInjectionError, match="name"):
        _message(to_name=f"Ada{field}")


def test_no_header_injection_through_a_rendered_subject(tmp_path: Path) -> None:
    templates = write_templates(tmp_path, html="<p>hi</p>")
    context = render_context(first_name="Ada\r\nBcc: everyone@example.com")
    with pytest.raises(TemplateRenderError) as caught:
        EmailRenderer(templates).render("hello", "Hi {{ member.first_name }}", context)
    assert caught.value.reason == "subject"


def test_no_header_injection_through_the_subject_value() -> None:
    with pytest.raises(HeaderInjectionError, match="subject"):
        _message(rendered=RenderedEmail("Hi\r\nBcc: x@example.com", "<p>x</p>", "x"))


def test_no_header_injection_through_addresses() -> None:
    with pytest.raises(HeaderInjectionError):
        _message(to_email="ada@example.com\r\nBcc: x@example.com")
    with pytest.raises(HeaderInjectionError):
        _message(from_address="Shop <hello@shop.example>\nBcc: x@example.com")
    with pytest.raises(HeaderInjectionError):
        _message(unsubscribe_url="https://x.test/u/1\r\nX-Evil: 1")


def _message(**overrides: object) -> object:
    arguments: dict[str, object] = {
        "rendered": RenderedEmail("Hi", "<p>x</p>", "x"),
        "action_id": "a",
        "campaign_id": "c",
        "member_id": "m",
        "as_of": date(2026, 11, 21),
        "to_email": "ada@example.com",
        "to_name": "Ada",
        "from_address": "Shop <hello@shop.example>",
        "unsubscribe_url": "https://x.test/u/1",
    }
    arguments.update(overrides)
    return build_message(**arguments)  # type: ignore[arg-type]
