"""What every command shares: the lazily built ``App`` and the consoles."""

from __future__ import annotations

from functools import cache

from rich.console import Console

from nudgeflow.bootstrap import App, build_app

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@cache
def get_app() -> App:
    """Settings are read on first use, so ``--help`` works even with a broken ``.env``."""
    return build_app()
