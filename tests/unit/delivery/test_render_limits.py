"""Templates render under limits: a template bomb is refused quickly, in little memory, as
a ``TemplateRenderError`` saying which limit and where, and ordinary templates still work.

Each hostile template here hangs or exhausts memory without the limits; CPU time and the
peak of traced memory are measured so that a regression fails instead of hanging for long.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from delivery.render import EmailRenderer, render_subject, render_template
from delivery.sandbox import TemplateRenderError, make_environment
from delivery.template_checks import inspect_source

CPU_SECONDS = 5.0  # generous for a loaded machine; unbounded, these take hours
PEAK_BYTES = 64 * 1024 * 1024

BOMBS = {
    "power": ("{{ 9 ** (9 ** 9) }}", "a number larger than 2**4096"),
    "power of a variable": ("{% set n = 99 %}{{ n ** n ** n }}", "larger than 2**4096"),
    "huge range": ("{% for i in range(10**9) %}x{% endfor %}", "too large"),
    "literal range": ("{% for i in range(999999999) %}x{% endfor %}", "too large"),
    "nested loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "more than 100,000 loop iterations and calls",
    ),
    "recursive macro": (
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "nested more than 50 deep",
    ),
    "exponential macro": (
        "{% macro f() %}{% for i in range(2) %}{{ f() }}{% endfor %}{% endmacro %}{{ f() }}",
        "nested more than 50 deep",
    ),
    "doubling text": (
        "{% set ns = namespace(s='ab') %}"
        "{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "longer than 1,000,000 characters",
    ),
    "repeated text": ("{{ 'a' * 10**9 }}", "longer than 1,000,000 characters"),
    "repeated list": ("{{ ([1] * 999999999)|length }}", "longer than 1,000,000 characters"),
    "long output": (
        "{% for i in range(90000) %}{{ 'a' * 900 }}{% endfor %}",
        "wrote more than 1,000,000 characters",
    ),
    "long set block": (
        "{% set x %}{% for i in range(90000) %}{{ 'a' * 900 }}{% endfor %}{% endset %}ok",
        "wrote more than 1,000,000 characters",
    ),
    "format width": ("{{ '%999999999d' % 1 }}", "format width or precision"),
    "str.format width": ("{{ '{:999999999}'.format(1) }}", "format width or precision"),
    "format filter": ("{{ '%999999999s'|format('x') }}", "format width or precision"),
    "center": ("{{ 'a'|center(999999999) }}", "too large"),
    "replace": ("{{ ('a' * 1000)|replace('', 'b' * 1000) }}", "longer than 1,000,000"),
    "join": ("{{ range(100000)|join('x' * 1000) }}", "longer than 1,000,000 characters"),
    "str.join": ("{{ ('x' * 100000).join(['a'] * 100000) }}", "longer than 1,000,000"),
    "indent": ("{{ ('a\\n' * 10000)|indent(10000) }}", "more than 1,000,000 characters"),
    "expandtabs": ("{{ 'a\\tb'.expandtabs(100000) }}", "'expandtabs' is not allowed"),
    "lipsum": ("{{ lipsum(100000) }}", "lipsum() may give at most"),
    "float power": ("{{ 9.5 ** (9 ** 9) }}", "a number is too large"),
}


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def measured() -> Iterator[None]:
    tracemalloc.start()
    started = time.process_time()
    yield
    spent = time.process_time() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert spent < CPU_SECONDS, f"took {spent:.1f} s of CPU"
    assert peak < PEAK_BYTES, f"peaked at {peak / 1e6:.0f} MB"


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_template_bomb_is_refused_with_its_reason(
    name: str, templates: Path, measured: None
) -> None:
    source, reason = BOMBS[name]
    (templates / "bomb.html.j2").write_text(source, encoding="utf-8")
    env = make_environment(templates)

    with pytest.raises(TemplateRenderError) as caught:
        render_template(env, "bomb.html.j2", {})

    assert caught.value.reason == "limit", caught.value
    assert reason in caught.value.detail
    assert caught.value.path is not None and caught.value.path.endswith("bomb.html.j2")
    assert caught.value.line == 1


def test_a_bomb_in_a_subject_is_refused(templates: Path, measured: None) -> None:
    env = make_environment(templates)
    with pytest.raises(TemplateRenderError) as caught:
        render_subject(env, "{{ 9 ** (9 ** 9) }}", {})
    assert caught.value.reason == "limit"


def test_compiling_a_constant_bomb_does_not_hang(templates: Path, measured: None) -> None:
    # Jinja2 folds constant expressions while compiling: validate compiles every template.
    env = make_environment(templates)
    assert inspect_source(env, "{{ 9 ** (9 ** 9) }}{{ 'a'|center(999999999) }}", "t.j2") == []


def test_templates_including_each_other_forever_are_refused(
    templates: Path, measured: None
) -> None:
    (templates / "loop.html.j2").write_text('{% include "loop.html.j2" %}', encoding="utf-8")
    with pytest.raises(TemplateRenderError) as caught:
        render_template(make_environment(templates), "loop.html.j2", {})
    assert caught.value.reason == "limit"
    assert "too deeply" in caught.value.detail


@pytest.mark.parametrize(
    ("source", "detail"),
    [
        ("{{ 1 / 0 }}", "division by zero"),
        ("{{ 1 + 'a' }}", "unsupported operand type(s) for +: 'int' and 'str'"),
        ("{{ [1, 'a']|sort }}", "'<' not supported"),
    ],
)
def test_python_errors_become_template_errors(templates: Path, source: str, detail: str) -> None:
    (templates / "oops.html.j2").write_text(source, encoding="utf-8")
    with pytest.raises(TemplateRenderError) as caught:
        render_template(make_environment(templates), "oops.html.j2", {})
    assert caught.value.reason == "error"
    assert detail in caught.value.detail


def test_the_sending_renderer_reports_bombs_too(templates: Path, measured: None) -> None:
    for suffix in ("html", "txt"):
        (templates / f"bomb.{suffix}.j2").write_text(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            encoding="utf-8",
        )
    with pytest.raises(TemplateRenderError) as caught:
        EmailRenderer(templates).render("bomb", "Hi", {})
    assert caught.value.reason == "limit"


def test_the_limits_leave_ordinary_templates_alone(templates: Path) -> None:
    source = (
        "{% for i in range(3) %}{{ i * 2 }},{% endfor %} {{ 2 ** 100 }} {{ 'ab' ~ 'cd' }}"
        " {{ '%3d' % 7 }} {{ [1, 2]|join(', ') }} {{ 'a-b'.replace('-', '+') }}"
        " {{ 'x'|center(5) }}|{{ 'a\\nb'|indent(2) }} {{ '{:>4}'.format(1) }}"
        "{% macro twice(x) %}{{ x }}{{ x }}{% endmacro %} {{ twice('y') }}"
        " {{ lipsum(1, html=false)|length > 0 }}"
    )
    (templates / "fine.html.j2").write_text(source, encoding="utf-8")
    rendered = render_template(make_environment(templates), "fine.html.j2", {})
    assert rendered == (
        "0,2,4, 1267650600228229401496703205376 abcd   7 1, 2 a+b   x  |a\n  b    1 yy True"
    )


def test_each_render_gets_a_fresh_budget(templates: Path) -> None:
    # 60,000 steps pass once; twice in one render would not. Ten renders in a row all pass.
    (templates / "busy.html.j2").write_text(
        "{% for i in range(60000) %}{% endfor %}done", encoding="utf-8"
    )
    env = make_environment(templates)
    assert [render_template(env, "busy.html.j2", {}) for _ in range(3)] == ["done"] * 3
