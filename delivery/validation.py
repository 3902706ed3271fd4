"""``nudgeflow validate``'s checks beyond parsing: templates rendered against a sample member,
and event types never seen in the data (the JSON Schemas are ``planning.schemas``).

A campaign's subject and templates are rendered with a sample of its reward kind, once with
every value the kind can have and once with only those it always has; a value the sample
lacks fails where the template prints it (``MissingValue``), at that file and line.

Everything is collected, nothing stops at the first problem: the result lists every problem
of every file as ``path:line:col: key.path: message``, like a compiler.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from itertools import product
from pathlib import Path
from typing import Any

from jinja2 import Environment

from delivery.render import render_subject as render_subject_line
from delivery.render import render_template
from delivery.sandbox import HTML_SUFFIX, TEXT_SUFFIX, TemplateRenderError, make_environment
from delivery.template_checks import inspect_source, inspect_template
from delivery.template_context import sample_contexts, template_view
from domain.campaign import Campaign
from nudgeflow.errors import FileProblem
from nudgeflow.userfiles import not_a_file
from planning.campaign_files import read_campaign_files
from planning.schemas import campaign_json_schema as campaign_json_schema
from planning.schemas import campaign_schema_text as campaign_schema_text
from planning.sourcefile import KeyPath, SourceFile

TEMPLATE_KEY: KeyPath = ("email", "template")
SUBJECT_KEY: KeyPath = ("email", "subject")


@dataclass(frozen=True)
class ValidationReport:
    problems: tuple[FileProblem, ...]
    campaigns: int
    templates: int
    notes: tuple[str, ...] = ()

    @property
    def errors(self) -> int:
        return sum(1 for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for p in self.problems if p.severity == "warning")

    def summary(self) -> str:
        return (
            f"checked {_count(self.campaigns, 'campaign')}, {_count(self.templates, 'template')}: "
            f"{_count(self.errors, 'error')}, {_count(self.warnings, 'warning')}"
        )


def _suggest(word: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def validate_campaigns(
    campaigns_dir: Path,
    templates_dir: Path,
    *,
    seen_event_types: Iterable[str] | None,
    as_of: date,
    base_url: str = "https://example.com",
) -> ValidationReport:
    """Check every campaign, lifecycle and policy file and every email template.

    ``seen_event_types`` is every type in the events table, or ``None`` to skip the check.
    """
    found = read_campaign_files(campaigns_dir)
    problems = list(found.problems)
    env = make_environment(templates_dir)
    problems += _syntax_problems(env, templates_dir)
    reported = {(p.path, p.line) for p in problems}
    checkable = [(c, found.sources[c.id]) for c in found.campaigns] + list(found.stand_ins)
    for campaign, source in checkable:
        for problem in _campaign_template_problems(
            env, templates_dir, campaign, source, as_of, base_url
        ) + _variant_problems(env, templates_dir, campaign, source, as_of, base_url):
            if problem.key == "" and (problem.path, problem.line) in reported:
                continue  # a syntax error already reported in the template itself
            problems.append(problem)
    if seen_event_types is not None:
        seen = set(seen_event_types) | RECORDED_HERE
        if found.lifecycle_source is not None:
            problems += _unseen_types(found.lifecycle_source, _lifecycle_mentions, seen)
        for source in found.documents:
            problems += _unseen_types(source, _campaign_mentions, seen)
    return ValidationReport(
        problems=tuple(sorted(problems, key=lambda p: (p.path, p.line, p.column, p.key))),
        campaigns=len(found.files),
        templates=len(_template_names(templates_dir)),
    )


def relative_paths(report: ValidationReport, cwd: Path) -> ValidationReport:
    """Show paths under ``cwd`` relative to it, as a user would type them."""

    def shown(path: str) -> str:
        if not os.path.isabs(path):
            return path
        try:
            return str(Path(path).relative_to(cwd))
        except ValueError:
            return path

    problems = tuple(replace(p, path=shown(p.path)) for p in report.problems)
    return replace(report, problems=problems)


# --- templates ------------------------------------------------------------------------


def _template_names(templates_dir: Path) -> set[str]:
    names = set()
    for suffix in (HTML_SUFFIX, TEXT_SUFFIX):
        for path in templates_dir.glob("*" + suffix):
            if not path.name.startswith("_"):
                names.add(path.name.removesuffix(suffix))
    return names


def _syntax_problems(env: Environment, templates_dir: Path) -> list[FileProblem]:
    """Every template file that does not parse, at its own path and line."""
    problems = []
    for path in sorted(templates_dir.glob("*.j2")):
        # A FIFO would make validate wait for a writer; a directory or bad bytes, fail.
        problem = not_a_file(path)
        if problem is not None:
            problems.append(FileProblem(str(path), 1, 1, "", problem))
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.reason if isinstance(exc, UnicodeDecodeError) else exc.strerror
            problems.append(FileProblem(str(path), 1, 1, "", f"cannot read: {reason}"))
            continue
        for error in inspect_source(env, source, str(path)):
            if error.reason == "syntax":
                problems.append(FileProblem(str(path), error.line or 1, 1, "", error.detail))
    return problems


def _at_key(source: SourceFile, key: KeyPath, error: TemplateRenderError) -> FileProblem:
    if error.reason == "syntax" and error.path is not None:
        return FileProblem(error.path, error.line or 1, 1, "", error.detail)
    return source.problem(key, str(error))


def _variant_problems(
    env: Environment,
    templates_dir: Path,
    campaign: Campaign,
    source: SourceFile,
    as_of: date,
    base_url: str,
) -> list[FileProblem]:
    """Each variant's own template and subject, checked as the campaign's are and reported
    at the variant's keys (what a variant leaves out is the campaign's, checked already)."""
    data = source.data if isinstance(source.data, dict) else {}
    written = data.get("variants")
    if not isinstance(written, list):
        return []
    problems: list[FileProblem] = []
    for index, variant in enumerate(campaign.variants):
        given = written[index] if index < len(written) else {}
        given = given if isinstance(given, dict) else {}
        if "template" not in given and "subject" not in given:
            continue
        as_variant = replace(campaign, template=variant.template, subject=variant.subject)
        template_key = ("variants", index, "template") if "template" in given else None
        subject_key = ("variants", index, "subject") if "subject" in given else None
        for problem in _campaign_template_problems(
            env,
            templates_dir,
            as_variant,
            source,
            as_of,
            base_url,
            template_key=template_key or TEMPLATE_KEY,
            subject_key=subject_key or SUBJECT_KEY,
            check_subject=subject_key is not None,
            check_template=template_key is not None,
        ):
            problems.append(problem)
    return problems


def _campaign_template_problems(
    env: Environment,
    templates_dir: Path,
    campaign: Campaign,
    source: SourceFile,
    as_of: date,
    base_url: str,
    *,
    template_key: KeyPath = TEMPLATE_KEY,
    subject_key: KeyPath = SUBJECT_KEY,
    check_subject: bool = True,
    check_template: bool = True,
) -> list[FileProblem]:
    problems = (
        _subject_problems(env, campaign, source, as_of, base_url, subject_key)
        if check_subject
        else []
    )
    if not check_template:
        return problems
    names = [campaign.template + HTML_SUFFIX, campaign.template + TEXT_SUFFIX]
    missing = [str(templates_dir / n) for n in names if not (templates_dir / n).is_file()]
    if len(missing) == 2:
        hint = _suggest(campaign.template, tuple(sorted(_template_names(templates_dir))))
        message = f"unknown template '{campaign.template}': no {missing[0]} or {missing[1]}{hint}"
        return [*problems, source.problem(template_key, message)]
    if missing:
        message = f"template '{campaign.template}' has no {missing[0]}"
        return [*problems, source.problem(template_key, message)]
    static = [e for name in names for e in inspect_template(env, name)]
    if static:
        return problems + [_at_key(source, template_key, e) for e in static]
    samples = sample_contexts(campaign, as_of, base_url)
    unsubscribe = samples[0]["links"]["unsubscribe"]
    for name, sample in product(names, samples):
        context = template_view(sample, strict=True)
        try:
            body = render_template(env, name, context)
        except TemplateRenderError as error:
            problems.append(_at_key(source, template_key, error))
            continue
        if unsubscribe not in body:
            problems.append(
                source.problem(
                    template_key,
                    f"{templates_dir / name}: no visible unsubscribe link: extend the layout "
                    "or show {{ links.unsubscribe }}",
                )
            )
    return list(dict.fromkeys(problems))  # the samples may find the same problem


def _subject_problems(
    env: Environment,
    campaign: Campaign,
    source: SourceFile,
    as_of: date,
    base_url: str,
    key: KeyPath = SUBJECT_KEY,
) -> list[FileProblem]:
    static = inspect_source(env, campaign.subject, None)
    if static:
        return [source.problem(key, e.detail) for e in static]
    for sample in sample_contexts(campaign, as_of, base_url):
        try:
            render_subject_line(env, campaign.subject, template_view(sample, strict=True))
        except TemplateRenderError as error:
            return [source.problem(key, error.detail)]
    return []


# --- event types never seen -------------------------------------------------------------

Mention = tuple[KeyPath, str]
# Types nudgeflow records itself, not imports: naming one before it first happens is no typo.
# (inbound.invites: a member accepted a VIP invite on its page.)
RECORDED_HERE = frozenset({"vip_invite_accepted"})


def _names(value: Any, path: KeyPath) -> Iterator[Mention]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                yield (*path, index), item


def _rule_mentions(data: Any, path: KeyPath) -> Iterator[Mention]:
    """Event types a rule (as written) names: ``events.type`` anywhere, ``spend`` → purchase."""
    if isinstance(data, dict):
        for key, value in data.items():
            here = (*path, key)
            if key == "events" and isinstance(value, dict):
                yield from _names(value.get("type"), (*here, "type"))
            elif key == "spend":
                yield here, "purchase"
            elif key != "attributes":
                yield from _rule_mentions(value, here)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _rule_mentions(item, (*path, index))


def _get(data: Any, key: str) -> Any:
    """``data[key]`` when ``data`` is a mapping that has it (documents may be malformed)."""
    return data.get(key) if isinstance(data, dict) else None


def _lifecycle_mentions(data: Any) -> Iterator[Mention]:
    yield from _rule_mentions(_get(data, "stages"), ("stages",))
    points = _get(_get(data, "scoring"), "points")
    for name in points if isinstance(points, dict) else ():
        yield ("scoring", "points", name), name


def _campaign_mentions(data: Any) -> Iterator[Mention]:
    yield from _rule_mentions(_get(data, "audience"), ("audience",))
    yield from _names(_get(_get(data, "trigger"), "types"), ("trigger", "types"))
    yield from _names(_get(_get(data, "response"), "counts_as"), ("response", "counts_as"))


def _unseen_types(
    source: SourceFile, mentions: Callable[[Any], Iterator[Mention]], seen: set[str]
) -> list[FileProblem]:
    """A warning for each event type the file names that the events table has never had
    (once per file and type, at its first mention)."""
    problems, warned = [], set()
    for key, name in mentions(source.data):
        if name in seen or name in warned:
            continue
        warned.add(name)
        hint = _suggest(name, tuple(sorted(seen)))
        message = f"event type '{name}' never occurs in the events table{hint}"
        problems.append(source.problem(key, message, "warning"))
    return problems
