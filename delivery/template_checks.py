"""Static checks of email templates: what a sample render cannot reach (branches not taken).

``validate`` renders every template against a sample member; these checks read the template
source instead, so a sandbox escape or a misspelt variable in a branch the sample member
would not take is reported too, with its file and line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from jinja2 import Environment, TemplateNotFound, TemplateSyntaxError, meta, nodes

from delivery.sandbox import TemplateRenderError, convert_template_error
from delivery.template_context import CONTEXT_KEYS


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
        # Compiling finds what parsing does not: an unknown filter or test, a misplaced
        # block. (A template no campaign uses is only ever compiled here.)
        env.compile(source, filename=where)
    except TemplateSyntaxError as exc:
        return [convert_template_error(exc, where)]
    except Exception as exc:  # the compiler should not fail otherwise; report, never crash
        return [TemplateRenderError("syntax", f"cannot be compiled: {exc}", where, None)]
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
