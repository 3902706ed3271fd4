"""Every command's ``--help`` reads like a well-kept Typer CLI: no ``<bool>``/``<str>`` value
types, no reStructuredText backticks, no paragraph broken where its source line ended, and
one ``--as-of`` everywhere (the same ``DATE``, the same range, the same default night).

The help is rendered in this process (Click's test runner on the real application), wide
enough that a paragraph rendered in one piece is on one line."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

WIDE = {"COLUMNS": "1000", "TERMINAL_WIDTH": "1000", "NO_COLOR": "1"}


def _application() -> typer.Typer:
    from cli import main

    main._register()
    return main.app


APP = _application()
ROOT_COMMAND = typer.main.get_command(APP)


def _walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under ``command`` with the words that name it (Typer ships its own
    Click, so groups are recognised by their ``commands``)."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(ROOT_COMMAND, ()))


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(APP, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def _lines(text: str) -> list[str]:
    """Each rendered line with the box drawing and runs of spaces collapsed."""
    return [" ".join(re.sub(r"[│╭╮╰╯─]", " ", line).split()) for line in text.splitlines()]


def _paragraphs(text: str | None) -> list[str]:
    """The paragraphs of a docstring or help string, each as one line of words."""
    if not text:
        return []
    return [
        " ".join(p.split())
        for p in inspect.cleandoc(text).partition("\f")[0].split("\n\n")
        if p.strip() and not p.startswith("\b")
    ]


def _name(path: tuple[str, ...]) -> str:
    return " ".join(path) or "nudgeflow"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[_name(p) for p, _ in COMMANDS])
def test_help_has_no_value_types_and_no_backticks(path: tuple[str, ...], command: Any) -> None:
    text = _help(path)
    types = re.findall(
        r"<(?:bool|str|int|float|path|file|dir|list\[[^\]]*\]|%[^>]*|[a-z ]+range)>", text
    )
    assert types == [], f"{_name(path)} --help shows value types {types}"
    assert "``" not in text, f"{_name(path)} --help has reStructuredText backticks"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[_name(p) for p, _ in COMMANDS])
def test_help_paragraphs_are_not_broken_mid_sentence(path: tuple[str, ...], command: Any) -> None:
    lines = _lines(_help(path))
    expected = list(_paragraphs(command.help))
    for sub in getattr(command, "commands", {}).values():  # the first paragraph of each listed
        expected += _paragraphs(sub.help)[:1]
    expected += [p for param in command.params for p in _paragraphs(getattr(param, "help", ""))]
    for paragraph in expected:
        assert any(paragraph in line for line in lines), (
            f"{_name(path)} --help breaks this paragraph across lines: {paragraph!r}"
        )


def _as_of_options() -> list[tuple[str, Any]]:
    return [
        (_name(path), param)
        for path, command in COMMANDS
        for param in command.params
        if "--as-of" in getattr(param, "opts", ())
    ]


def test_every_as_of_is_the_same_date_option() -> None:
    found = _as_of_options()
    assert {name for name, _ in found} >= {"run", "plan", "why", "preview", "actions"}
    helps = {name: str(getattr(param, "help", "")) for name, param in found}
    for name, param in found:
        assert param.metavar == "DATE", f"{name} --as-of shows {param.metavar!r}, not DATE"
    # One definition: the same first sentence (format and range) everywhere …
    firsts = {re.split(r"[.;:](?: |$)", text)[0] for text in helps.values()}
    assert len(firsts) == 1, helps
    (first,) = firsts
    assert "YYYY-MM-DD" in first and "1970-01-01" in first
    # … and where --as-of may be left out for a night, the same default night.
    defaults = {text.split("default", 1)[1] for text in helps.values() if "default" in text}
    assert len(defaults) == 1, helps
    assert "previous business day" in defaults.pop()
