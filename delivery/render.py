"""Email rendering in a sandboxed Jinja2 environment, and the template context's shape.

Templates live in ``templates/email/``: one ``<name>.html.j2`` (HTML-autoescaped) and one
``<name>.txt.j2`` (plain) per email, both extending a shared layout that shows the
unsubscribe link. Marketers write these files, so they are rendered in Jinja2's immutable
sandbox with ``StrictUndefined``: a typo fails loudly and ``''.__class__`` is refused.

``EmailRenderer`` is the sending path: it keeps each campaign's compiled templates (the
files are read and compiled once per process, not once per email) and inlines the layout's
CSS with css-inline, because many mail clients (Gmail's apps among them) drop ``<style>``.

Every failure is a ``TemplateRenderError`` (a ``DeliveryError``) that says which template
file and line went wrong and why (``syntax``, ``undefined``, ``unsafe``, ``missing``,
``subject``, ``unsubscribe``).
"""

from __future__ import annotations

import difflib
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import SecretStr

from audience.rules import AllOf, AnyOf, Attribute, Rule
from delivery.tokens import member_links
from domain.campaign import Campaign
from nudgeflow.errors import DeliveryError

HTML_SUFFIX = ".html.j2"
TEXT_SUFFIX = ".txt.j2"

# The template context. Templates may use exactly these names and keys.
CONTEXT_KEYS: dict[str, tuple[str, ...] | None] = {
    "member": (
        "member_id",
        "email",
        "first_name",
        "last_name",
        "country",
        "timezone",
        "attributes",
        "stage",
        "score",
    ),
    "campaign": ("id", "name"),
    "reward": ("kind", "code", "value", "expires_on", "link"),
    "links": ("unsubscribe", "preferences"),
    "now": None,  # a date: its attributes (year, month…) and methods are Python's
}


class TemplateRenderError(DeliveryError):
    """A template or subject could not be rendered: ``reason``, ``detail`` and, when known,
    the template file ``path`` and ``line`` where it went wrong."""

    def __init__(
        self, reason: str, detail: str, path: str | None = None, line: int | None = None
    ) -> None:
        self.reason = reason
        self.detail = detail
        self.path = path
        self.line = line
        super().__init__(f"{self.where}: {detail}" if self.where else detail)

    @property
    def where(self) -> str | None:
        if self.path is None:
            return None
        return f"{self.path}:{self.line}" if self.line is not None else self.path


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def longdate(value: date) -> str:
    """The ``longdate`` filter: ``2026-12-05`` → ``December 5, 2026``."""
    return f"{value:%B} {value.day}, {value.year}"


def make_environment(templates_dir: Path) -> Environment:
    """The sandbox every email is rendered in: HTML autoescaped for ``.html.j2`` only."""
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(templates_dir)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",), disabled_extensions=(), default_for_string=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["longdate"] = longdate
    return env


def _environment(env_or_dir: Environment | Path | str) -> Environment:
    if isinstance(env_or_dir, Environment):
        return env_or_dir
    return make_environment(Path(env_or_dir))


def _template_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """File and line of the innermost template frame of a rendering error."""
    found: tuple[str | None, int | None] = (None, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(".j2"):
            found = (frame.filename, frame.lineno)
    return found


def _render_error(exc: TemplateError, fallback: str | None) -> TemplateRenderError:
    if isinstance(exc, TemplateSyntaxError):
        path = exc.filename or exc.name or fallback
        return TemplateRenderError("syntax", exc.message or "syntax error", path, exc.lineno)
    if isinstance(exc, TemplateNotFound):
        return TemplateRenderError("missing", f"template {exc.name!r} not found", fallback)
    path, line = _template_frame(exc)
    path = path or fallback
    if isinstance(exc, SecurityError):
        return TemplateRenderError("unsafe", f"refused by the sandbox: {exc.message}", path, line)
    if isinstance(exc, UndefinedError):
        return TemplateRenderError("undefined", exc.message or "undefined variable", path, line)
    return TemplateRenderError("error", exc.message or type(exc).__name__, path, line)


def render_subject(env: Environment, subject: str, context: Mapping[str, Any]) -> str:
    """Render a subject line (no autoescaping); refuse line breaks (header injection)."""
    try:
        text = env.from_string(subject).render(context)
    except TemplateError as exc:
        raise _render_error(exc, None) from None
    if "\r" in text or "\n" in text:
        raise TemplateRenderError("subject", "the rendered subject contains a line break")
    return text.strip()


def render_template(env: Environment, name: str, context: Mapping[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except TemplateError as exc:
        raise _render_error(exc, name) from None


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
            except TemplateError as exc:
                raise _render_error(exc, template) from None
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
        try:
            subject_text = subject_t.render(context)
        except TemplateError as exc:
            raise _render_error(exc, None) from None
        if "\r" in subject_text or "\n" in subject_text:
            raise TemplateRenderError("subject", "the rendered subject contains a line break")
        try:
            html = html_t.render(context)
        except TemplateError as exc:
            raise _render_error(exc, template + HTML_SUFFIX) from None
        try:
            text = text_t.render(context)
        except TemplateError as exc:
            raise _render_error(exc, template + TEXT_SUFFIX) from None
        return RenderedEmail(
            subject=subject_text.strip(),
            html=self.inline(html) if self._inline_css else html,
            text=text,
        )

    def render_campaign(self, campaign: Campaign, context: Mapping[str, Any]) -> RenderedEmail:
        return self.render(campaign.template, campaign.subject, context)


# --- static checks: what a sample render cannot reach (branches not taken) -------------


def _suggest(word: str, known: tuple[str, ...], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


def _unsafe_names(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    for getattr_node in tree.find_all(nodes.Getattr):
        if getattr_node.attr.startswith("_"):
            yield getattr_node.lineno, getattr_node.attr
    for getitem in tree.find_all(nodes.Getitem):
        key = getitem.arg
        if isinstance(key, nodes.Const) and str(key.value).startswith("__"):
            yield getitem.lineno, str(key.value)
    for call in tree.find_all(nodes.Filter):
        if call.name == "attr" and call.args:
            arg = call.args[0]
            if isinstance(arg, nodes.Const) and str(arg.value).startswith("_"):
                yield call.lineno, str(arg.value)


def _unknown_keys(tree: nodes.Template, env: Environment) -> Iterator[tuple[int, str]]:
    allowed = (*CONTEXT_KEYS, *env.globals)
    for name in sorted(meta.find_undeclared_variables(tree)):
        if name not in allowed:
            line = next(n.lineno for n in tree.find_all(nodes.Name) if n.name == name)
            yield line, f"unknown variable '{name}'{_suggest(name, tuple(CONTEXT_KEYS))}"
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for node in tree.find_all(nodes.Getattr):
        root = node.node
        if not isinstance(root, nodes.Name) or root.name in assigned:
            continue
        keys = CONTEXT_KEYS.get(root.name)
        if keys is not None and node.attr not in keys and not node.attr.startswith("_"):
            hint = _suggest(node.attr, keys, prefix=f"{root.name}.")
            yield node.lineno, f"unknown variable '{root.name}.{node.attr}'{hint}"


def inspect_source(env: Environment, source: str, where: str | None) -> list[TemplateRenderError]:
    """Problems visible without rendering: sandbox escapes and unknown variables anywhere
    in the template, including branches the sample member would not take."""
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        return [_render_error(exc, where)]
    found = [
        TemplateRenderError(
            "unsafe",
            f"refused by the sandbox: '{name}' (names starting with '_' are private)",
            where,
            line,
        )
        for line, name in _unsafe_names(tree)
    ]
    found += [
        TemplateRenderError("undefined", message, where, line)
        for line, message in _unknown_keys(tree, env)
    ]
    return sorted(found, key=lambda e: (e.line or 0, e.detail))


def inspect_template(env: Environment, name: str) -> list[TemplateRenderError]:
    """``inspect_source`` for a template file and the layouts it extends or includes."""
    problems: list[TemplateRenderError] = []
    pending, seen = [name], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        assert env.loader is not None
        try:
            source, filename, _ = env.loader.get_source(env, current)
        except TemplateNotFound:
            problems.append(TemplateRenderError("missing", f"template {current!r} not found", name))
            continue
        problems += inspect_source(env, source, filename or current)
        try:
            tree = env.parse(source)
        except TemplateSyntaxError:
            continue
        pending += [t for t in meta.find_referenced_templates(tree) if t is not None]
    return problems


# --- the context ----------------------------------------------------------------------


def email_context(
    *,
    member: Mapping[str, Any],
    campaign: Campaign,
    reward: Mapping[str, Any] | None,
    links: Mapping[str, str],
    now: date,
) -> dict[str, Any]:
    """The context every template is rendered with."""
    return {
        "member": {key: member.get(key) for key in CONTEXT_KEYS["member"] or ()}
        | {"attributes": dict(member.get("attributes") or {})},
        "campaign": {"id": campaign.id, "name": campaign.name},
        "reward": dict(reward) if reward is not None else None,
        "links": {"unsubscribe": links["unsubscribe"], "preferences": links["preferences"]},
        "now": now,
    }


def member_email_context(
    *,
    member: Mapping[str, Any],
    campaign: Campaign,
    reward: Mapping[str, Any] | None,
    now: date,
    base_url: str,
    signing_key: str | SecretStr,
) -> dict[str, Any]:
    """The context for a real member: ``links`` hold their signed unsubscribe and
    preferences links (``member["member_id"]`` and the campaign id are in the token)."""
    links = member_links(base_url, signing_key, str(member["member_id"]), campaign.id)
    return email_context(member=member, campaign=campaign, reward=reward, links=links, now=now)


def _sample_attributes(campaign: Campaign) -> dict[str, str]:
    """A value for each attribute the audience tests with ``in``, so templates may use it."""
    found: dict[str, str] = {}

    def walk(rule: Rule) -> None:
        match rule:
            case Attribute(name=name, op="in", values=values) if values:
                found.setdefault(name, values[0])
            case AllOf(rules=rules) | AnyOf(rules=rules):
                for inner in rules:
                    walk(inner)

    walk(campaign.audience.rule)
    for column in ("country", "timezone", "email", "first_name", "last_name"):
        found.pop(column, None)
    return found


def sample_context(
    campaign: Campaign, as_of: date | None = None, base_url: str = "https://example.com"
) -> dict[str, Any]:
    """A plausible member and reward for ``campaign``: what ``validate`` renders against."""
    now = as_of or date.today()
    stages = campaign.audience.stages
    score = campaign.audience.score_min
    member = {
        "member_id": "sample-0001",
        "email": "ada.lovelace@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "country": "GB",
        "timezone": "Europe/London",
        "attributes": _sample_attributes(campaign),
        "stage": stages[0] if stages else None,
        "score": float(score) + 10.0 if score is not None else 42.0,
    }
    reward = None
    if campaign.reward is not None:
        r = campaign.reward
        code = "THANKS-7Q4M2" if r.kind in ("discount", "credit") else None
        days = r.expires_in_days
        reward = {
            "kind": r.kind,
            "code": code,
            "value": r.value_text(),
            "expires_on": now + timedelta(days=days) if days else None,
            "link": f"{base_url}/r/{code or 'sample-invite'}",
        }
    links = {
        "unsubscribe": f"{base_url}/unsubscribe/sample-token",
        "preferences": f"{base_url}/preferences/sample-token",
    }
    return email_context(member=member, campaign=campaign, reward=reward, links=links, now=now)
