"""What every command shares: the consoles, and ``process_app`` (the composition root's
``App`` for this process: a command takes it once and passes its parts down)."""

from __future__ import annotations

import sys

from rich.console import Console

from bootstrap.app import process_app

# On a terminal rich uses its width; piped into a file or a log (make demo, cron), tables
# get 120 columns instead of rich's default 80, so campaign ids are not folded.
_WIDTH = None if sys.stdout.isatty() else 120

console = Console(highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False)

__all__ = ["console", "err_console", "process_app"]
