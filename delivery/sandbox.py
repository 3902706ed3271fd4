"""The sandboxed Jinja2 environment every email is rendered in, and the errors it reports.

Templates live in ``templates/email/``: one ``<name>.html.j2`` (HTML-autoescaped) and one
``<name>.txt.j2`` (plain) per email, both extending a shared layout that shows the
unsubscribe link. Marketers write these files, so they are rendered in Jinja2's immutable
sandbox with ``StrictUndefined``: a typo fails loudly and ``''.__class__`` is refused. A
``None`` that reaches the output (``member.attributes.get('x')``) prints as nothing.

Every template renders under the limits of ``delivery.render_limits`` (steps, output,
nesting, number sizes), so none can hang or exhaust the process.

Every failure is a ``TemplateRenderError`` (a ``DeliveryError``) that says which template
file and line went wrong and why (``syntax``, ``undefined``, ``unsafe``, ``missing``,
``limit``, ``subject``, ``unsubscribe``, ``error``). Whatever a template raises, Python
errors such as ``1 / 0`` included, becomes one: one bad template fails its email, never a
batch or a ``validate`` run.
"""

from __future__ import annotations

import difflib
import re
import traceback
from datetime import date
from pathlib import Path

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.tests import TESTS
from jinja2.utils import generate_lorem_ipsum

from delivery.render_limits import BoundedSandbox, TemplateLimitError, bounded_filter
from nudgeflow.errors import DeliveryError

HTML_SUFFIX = ".html.j2"
TEXT_SUFFIX = ".txt.j2"
FILTER_NAMES = (*FILTERS, "longdate")


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


def longdate(value: date) -> str:
    """The ``longdate`` filter: ``2026-12-05`` → ``December 5, 2026``."""
    return f"{value:%B} {value.day}, {value.year}"


def _none_as_empty(value: object) -> object:
    """Jinja2's ``finalize``: every printed value passes here; ``None`` prints as nothing."""
    return "" if value is None else value


def bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja2's placeholder text, at most 100 paragraphs of at most 1,000 words."""
    if n > 100 or max > 1000:
        raise TemplateLimitError("lipsum() may give at most 100 paragraphs of 1,000 words")
    return str(generate_lorem_ipsum(n=n, html=html, min=min, max=max))


def make_environment(templates_dir: Path) -> Environment:
    """The sandbox every email is rendered in: HTML autoescaped for ``.html.j2`` only."""
    env = BoundedSandbox(
        loader=FileSystemLoader(str(templates_dir)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",), disabled_extensions=(), default_for_string=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_none_as_empty,
    )
    env.filters["longdate"] = longdate
    env.filters = {name: bounded_filter(name, f) for name, f in env.filters.items()}
    env.globals["lipsum"] = bounded_lipsum
    return env


def _template_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """File and line of the innermost template frame of a rendering error."""
    found: tuple[str | None, int | None] = (None, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(".j2"):
            found = (frame.filename, frame.lineno)
    return found


def convert_template_error(exc: Exception, fallback: str | None) -> TemplateRenderError:
    """``exc`` (anything rendering raised) as a ``TemplateRenderError`` located in its
    template file; ``fallback`` names the template when Jinja2 does not say which."""
    if isinstance(exc, TemplateRenderError):
        return exc
    if isinstance(exc, TemplateSyntaxError):
        path = exc.filename or exc.name or fallback
        return TemplateRenderError("syntax", syntax_message(exc), path, exc.lineno)
    if isinstance(exc, TemplateNotFound):
        return TemplateRenderError("missing", f"template {exc.name!r} not found", fallback)
    path, line = _template_frame(exc)
    path = path or fallback
    if isinstance(exc, SecurityError):
        return TemplateRenderError("unsafe", f"refused by the sandbox: {exc.message}", path, line)
    if isinstance(exc, UndefinedError):
        return TemplateRenderError("undefined", exc.message or "undefined variable", path, line)
    if isinstance(exc, TemplateLimitError):
        return TemplateRenderError("limit", exc.message or "a limit was broken", path, line)
    if isinstance(exc, OverflowError):  # range() beyond the sandbox's MAX_RANGE, float sizes
        detail = str(exc) if "MAX_RANGE" in str(exc) else "a number is too large"
        return TemplateRenderError("limit", detail, path, line)
    if isinstance(exc, RecursionError):
        detail = "templates include or call each other too deeply"
        return TemplateRenderError("limit", detail, path, line)
    if isinstance(exc, MemoryError):
        return TemplateRenderError("limit", "the template needs too much memory", path, line)
    if isinstance(exc, TemplateError):
        return TemplateRenderError("error", exc.message or type(exc).__name__, path, line)
    return TemplateRenderError("error", str(exc) or type(exc).__name__, path, line)


_UNKNOWN_NAME = re.compile(r"^No (filter|test) named '([^']*)'")


def syntax_message(exc: TemplateSyntaxError) -> str:
    """Jinja2's syntax message, with "did you mean" for an unknown filter or test."""
    message = exc.message or "syntax error"
    found = _UNKNOWN_NAME.match(message)
    if found is None:
        return message
    kind, name = found.groups()
    known = sorted(FILTER_NAMES if kind == "filter" else TESTS)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {kind} '{name}'{hint}"
