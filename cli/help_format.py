"""How every command's ``--help`` reads: the Typer app, group and command classes the CLI
is built from (``CommandApp`` instead of ``typer.Typer``).

Typer prints a value type beside every parameter (``<bool>`` on flags, ``<str>``,
``<path>``), keeps a docstring's line breaks in the list of commands, and prints a paragraph
wrapped at the source's width inside a wider help. So, for each command and group:

- its help text is reflowed: the lines of a paragraph are joined, and the terminal wraps
  them (a paragraph starting with ``\\b`` keeps its lines, as in Click);
- flags (``--json``, ``--help``) show no value type: they take no value;
- an option or argument with a ``metavar`` (``DATE``, ``FILE``, ``MEMBER_ID``) shows that
  name alone, without the type Typer would add.

``tests/functional/test_help_text.py`` renders every command's help and holds it to this.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


def reflow(text: str | None) -> str | None:
    """``text`` with every paragraph on one line (``\\b`` paragraphs kept as written)."""
    if text is None:
        return None
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs if p.strip()
    )


class _NamedArgument(TyperArgument):
    """An argument whose metavar says what it is: no type beside it."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _quieten(param: Any) -> None:
    if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
        param.metavar = ""  # Typer shows the metavar instead of the type: here, nothing
    elif type(param) is TyperArgument and param.metavar:
        # Typer builds its arguments itself and offers no class to use instead.
        param.__class__ = _NamedArgument


def _tidy(command: TyperCommand | TyperGroup) -> None:
    command.help = reflow(command.help)
    for param in command.params:
        _quieten(param)


class HelpCommand(TyperCommand):
    """A command whose help reads well (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _tidy(self)

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None:
            _quieten(option)
        return option


class HelpGroup(TyperGroup):
    """A group of commands whose help reads well (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _tidy(self)

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None:
            _quieten(option)
        return option


class CommandApp(typer.Typer):
    """``typer.Typer`` whose groups and commands are ``HelpGroup`` and ``HelpCommand``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=HelpGroup, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        kwargs.setdefault("cls", HelpCommand)
        return super().command(*args, **kwargs)
