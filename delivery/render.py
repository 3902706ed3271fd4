"""Rendering an email's subject, HTML and text, once (``render_email``) or by the thousand
(``EmailRenderer``).

``EmailRenderer`` is the sending path: it keeps each campaign's compiled templates (the
files are read and compiled once per process, not once per email) and inlines the layout's
CSS with css-inline, because many mail clients (Gmail's apps among them) drop ``<style>``.
Every render sees the context through ``template_view``: a value the data lacks is
``Missing`` (nothing printed), never ``None``.

Whatever rendering raises (a Jinja2 error, a broken limit, ``1 / 0``) comes out as a
``TemplateRenderError``: dispatch fails that one action with the reason, the batch goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import Environment, Template

from delivery.sandbox import (
    HTML_SUFFIX,
    TEXT_SUFFIX,
    TemplateRenderError,
    convert_template_error,
    make_environment,
)
from delivery.template_context import template_view
from domain.campaign import Campaign


@dataclass(frozen=True)
class RenderedEmail:
    """One email as its member will read it."""

    subject: str
    html: str
    text: str


def _environment(env_or_dir: Environment | Path | str) -> Environment:
    if isinstance(env_or_dir, Environment):
        return env_or_dir
    return make_environment(Path(env_or_dir))


def render_subject(env: Environment, subject: str, context: Mapping[str, Any]) -> str:
    """Render a subject line (no autoescaping); refuse line breaks (header injection)."""
    try:
        text = env.from_string(subject).render(template_view(context))
    except Exception as exc:  # anything a template causes fails this email only
        raise convert_template_error(exc, None) from None
    if "\r" in text or "\n" in text:
        raise TemplateRenderError("subject", "the rendered subject contains a line break")
    return text.strip()


def render_template(env: Environment, name: str, context: Mapping[str, Any]) -> str:
    try:
        return env.get_template(name).render(template_view(context))
    except Exception as exc:  # anything a template causes fails this email only
        raise convert_template_error(exc, name) from None


def render_email(
    env_or_dir: Environment | Path | str, template: str, subject: str, context: Mapping[str, Any]
) -> RenderedEmail:
    """Render ``template``'s HTML and text parts and the subject against ``context``."""
    env = _environment(env_or_dir)
    return RenderedEmail(
        subject=render_subject(env, subject, context),
        html=render_template(env, template + HTML_SUFFIX, context),
        text=render_template(env, template + TEXT_SUFFIX, context),
    )


class EmailRenderer:
    """Renders many emails fast: compiled templates cached per campaign, CSS inlined.

    The environment does not re-check template files for changes (``auto_reload`` off): a
    nightly run renders thousands of emails from templates that do not change under it.
    """

    def __init__(self, templates_dir: Path, *, inline_css: bool = True) -> None:
        self.environment = make_environment(templates_dir)
        self.environment.auto_reload = False
        self._inline_css = inline_css
        # Remote stylesheets are never fetched: rendering must not reach the network, and a
        # template must not make the renderer request URLs of its author's choosing.
        # At-rules (@media) cannot be inlined, so they stay in a <style> element.
        self._inliner = css_inline.CSSInliner(
            keep_style_tags=False, keep_at_rules=True, load_remote_stylesheets=False
        )
        self._compiled: dict[tuple[str, str], tuple[Template, Template, Template]] = {}

    def _templates(self, template: str, subject: str) -> tuple[Template, Template, Template]:
        key = (template, subject)
        found = self._compiled.get(key)
        if found is None:
            env = self.environment
            try:
                found = (
                    env.from_string(subject),
                    env.get_template(template + HTML_SUFFIX),
                    env.get_template(template + TEXT_SUFFIX),
                )
            except Exception as exc:  # anything a template causes fails this email only
                raise convert_template_error(exc, template) from None
            self._compiled[key] = found
        return found

    def inline(self, html: str) -> str:
        """``html`` with its ``<style>`` rules moved into ``style`` attributes."""
        try:
            return str(self._inliner.inline(html))
        except ValueError as exc:  # css_inline reports unparsable CSS as ValueError
            raise TemplateRenderError("css", f"CSS could not be inlined: {exc}") from None

    def render(self, template: str, subject: str, context: Mapping[str, Any]) -> RenderedEmail:
        """Subject, HTML (CSS inlined) and text of ``template`` for ``context``."""
        subject_t, html_t, text_t = self._templates(template, subject)
        context = template_view(context)
        try:
            subject_text = subject_t.render(context)
        except Exception as exc:  # anything a template causes fails this email only
            raise convert_template_error(exc, None) from None
        if "\r" in subject_text or "\n" in subject_text:
            raise TemplateRenderError("subject", "the rendered subject contains a line break")
        try:
            html = html_t.render(context)
        except Exception as exc:  # anything a template causes fails this email only
            raise convert_template_error(exc, template + HTML_SUFFIX) from None
        try:
            text = text_t.render(context)
        except Exception as exc:  # anything a template causes fails this email only
            raise convert_template_error(exc, template + TEXT_SUFFIX) from None
        return RenderedEmail(
            subject=subject_text.strip(),
            html=self.inline(html) if self._inline_css else html,
            text=text,
        )

    def render_campaign(self, campaign: Campaign, context: Mapping[str, Any]) -> RenderedEmail:
        return self.render(campaign.template, campaign.subject, context)
